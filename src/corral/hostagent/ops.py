"""The operations the agent answers, by name (namespaced: ``net.*``, ``nfs.*``, ``disk.*``)."""

from __future__ import annotations

import os
import platform
import shutil
import sys
from collections.abc import Callable
from typing import Any, BinaryIO

from . import diskops, haops, netops, nfsops
from .protocol import PROTOCOL, AgentError, agent_version

Op = Callable[[dict[str, Any]], dict[str, Any]]


def version(_args: dict[str, Any]) -> dict[str, Any]:
    """Who answers: the agent's version, the Python running it, and what the host has."""
    return {
        "version": agent_version(),
        "protocol": PROTOCOL,
        "python": platform.python_version(),
        "root": os.geteuid() == 0,
        "tools": {
            tool: shutil.which(tool) is not None for tool in ("ip", "bridge", "setsid", "qemu-img")
        },
        "ops": sorted([*OPS, *STREAM_OPS]),
        "executable": sys.executable,
    }


OPS: dict[str, Op] = {
    "version": version,
    **nfsops.OPS,
    **diskops.OPS,
    **haops.OPS,
    "net.state": netops.state,
    "net.apply": netops.apply,
    "net.confirm": netops.confirm,
}


#: Ops that read a body after their request line (see :func:`run`).
STREAM_OPS: dict[str, Callable[[dict[str, Any], BinaryIO], dict[str, Any]]] = {
    **nfsops.STREAM_OPS,
}


def run(op: str, args: dict[str, Any], body: BinaryIO | None = None) -> dict[str, Any]:
    """Run ``op``; ``body``: the rest of stdin, for the ops that read one."""
    streaming = STREAM_OPS.get(op)
    if streaming is not None:
        if body is None:
            raise AgentError(f"{op} reads its data after the request line, and none was given")
        return streaming(args, body)
    handler = OPS.get(op)
    if handler is None:
        known = ", ".join(sorted([*OPS, *STREAM_OPS]))
        raise AgentError(f"unknown operation {op!r}; this agent knows {known}")
    return handler(args)
