"""The agent's entry point: one request on stdin, one reply on stdout.

``--rollback CHANGE_ID`` runs the detached timer ``net.apply`` starts (:mod:`.netops`);
``--ha-beat`` the storage heartbeat ``ha.beat`` starts (:mod:`.haops`)."""

from __future__ import annotations

import os
import signal
import sys

from . import haops, netops, ops
from .protocol import AgentError, agent_version, parse_request, reply

#: Requests are small; a bigger one is refused rather than read into memory.
MAX_REQUEST = 1 << 20


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "--rollback":
        return netops.rollback_timer(argv[1])
    if argv == ["--ha-beat"]:
        return haops.main_beater()
    # A dropped SSH session must not stop a change half-way: finish, and let the reply go
    # nowhere (the rollback timer covers a manager that never hears back).
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    version = agent_version()
    # The request is one line (JSON has no raw newline); a body may follow it (nfs.write).
    raw = sys.stdin.buffer.readline(MAX_REQUEST + 1)
    try:
        if len(raw) > MAX_REQUEST:
            raise AgentError("the request is larger than 1 MiB")
        op, args = parse_request(raw)
        out = reply(version, ops.run(op, args, sys.stdin.buffer))
    except AgentError as exc:
        out = reply(version, None, str(exc) or "the agent failed")
    except Exception as exc:  # noqa: BLE001 (the top level: a bug still gets a reply)
        out = reply(version, None, f"the agent failed unexpectedly: {type(exc).__name__}: {exc}")
    try:
        os.write(sys.stdout.fileno(), out)
    except OSError:
        return 1
    return 0
