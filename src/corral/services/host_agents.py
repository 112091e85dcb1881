"""Calling the host agent (:mod:`corral.hostagent`) on a host: over the SSH access recorded at
enrollment, or as a subprocess on the manager's own host; installing it when it is missing or
of another version.

    agents = HostAgents(db, data_dir / "ssh" / "known_hosts")
    result = await agents.call("h1", "net.state", {}, timeout_s=30)

Every failure is a Corral error naming the host and the operation: ``HostUnreachable`` when SSH
itself failed, ``OperationTimeout`` when no reply came in time, ``HostError`` when the agent
answered with an error (its sentence, cleaned of control characters and cut short) or could
not be run, ``Conflict`` for a host the agent cannot reach at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corral import store
from corral.errors import Conflict, CorralError, HostError, OperationTimeout
from corral.hostsetup import agent as shipped
from corral.hostsetup.ssh import SshRunner, SshTarget
from corral.model.host import SshAccess
from corral.services._db import Db
from corral.services.host_agent_stream import AgentStream

log = logging.getLogger(__name__)

#: At most this much of an agent's error sentence is repeated (it comes from the host).
_MAX_ERROR = 600


@dataclass(frozen=True)
class AgentAccess:
    """How Corral reaches a host's agent: ``ssh`` set, or the manager's own host (``local``)."""

    host: str
    ssh: SshAccess | None = None
    local: bool = False


def access_for(name: str, uri: str, ssh: SshAccess | None) -> AgentAccess:
    """The way to ``name``'s agent, or Conflict saying why there is none."""
    if ssh is not None:
        return AgentAccess(name, ssh=ssh)
    if uri.startswith(("qemu:///", "qemu+unix:///")):
        return AgentAccess(name, local=True)
    if uri.startswith("test:"):
        raise Conflict(f"host {name} is libvirt's test driver: it has no host agent")
    raise Conflict(
        f"host {name} has no SSH access recorded: Corral runs its host agent over the SSH "
        f"access given at enrollment; enroll the host with `corral host enroll` "
        f"(or rotate its certificates with SSH access given)"
    )


def clean(text: str) -> str:
    """An agent's sentence, safe to repeat: printable characters only, bounded."""
    printable = "".join(c if c.isprintable() else " " for c in text).strip()
    return printable if len(printable) <= _MAX_ERROR else printable[: _MAX_ERROR - 1] + "…"


class HostAgents:
    """The one way services reach host agents."""

    def __init__(self, db: Db, known_hosts: Path, local_state_dir: Path | None = None) -> None:
        self._db = db
        self.known_hosts = known_hosts
        #: The agent's state on the manager's own host (None: the agent's default, /run).
        self.local_state_dir = local_state_dir
        self._installing: dict[str, asyncio.Lock] = {}

    async def access(self, host_name: str) -> AgentAccess:
        def read(session: Any) -> AgentAccess:
            row = store.get_host(session, host_name)
            return access_for(row.name, row.uri, store.host_ssh(row))

        return await self._db(read)

    async def call(
        self, host_name: str, op: str, args: dict[str, Any], *, timeout_s: float
    ) -> dict[str, Any]:
        """Run ``op`` with ``args`` on ``host_name``'s agent; its result."""
        access = await self.access(host_name)
        return await self.call_with(access, op, args, timeout_s=timeout_s)

    async def call_with(
        self, access: AgentAccess, op: str, args: dict[str, Any], *, timeout_s: float
    ) -> dict[str, Any]:
        request = json.dumps({"op": op, "args": args}).encode()
        what = f"host agent on {access.host}: {op}"
        try:
            if access.local:
                raw = await _run_local(request, timeout_s, self.local_state_dir)
            else:
                raw = await self._run_ssh(access, request, timeout_s)
        except CorralError as exc:
            raise type(exc)(f"{what}: {exc.message}") from exc
        return _result(what, raw)

    async def open_stream(
        self, host_name: str, op: str, args: dict[str, Any], *, timeout_s: float
    ) -> AgentStream:
        """Start ``op`` on ``host_name``'s agent with a body to follow (see
        ``host_agent_stream``); ``timeout_s`` bounds each write and the final answer."""
        access = await self.access(host_name)
        what = f"host agent on {access.host}: {op}"
        request = json.dumps({"op": op, "args": args}).encode()
        if access.local:
            argv = [sys.executable, "-I", "-m", "corral.hostagent"]
        else:
            assert access.ssh is not None
            # Installed (or updated) first: the body cannot be sent twice.
            await self.call_with(access, "version", {}, timeout_s=timeout_s)
            ssh = SshRunner(
                SshTarget(access.ssh.destination, access.ssh.port, access.ssh.key_path),
                self.known_hosts,
            )
            argv = ssh.argv(shipped.run_command(shipped.agent_bundle()))
        return await AgentStream.start(what, argv, request, _streamed_result, timeout_s)

    async def ensure(self, host_name: str, *, timeout_s: float = 60) -> dict[str, Any]:
        """Install the agent if needed and return its ``version`` answer (enrollment calls it)."""
        return await self.call(host_name, "version", {}, timeout_s=timeout_s)

    async def _run_ssh(self, access: AgentAccess, request: bytes, timeout_s: float) -> bytes:
        assert access.ssh is not None
        ssh = SshRunner(
            SshTarget(access.ssh.destination, access.ssh.port, access.ssh.key_path),
            self.known_hosts,
        )
        bundle = shipped.agent_bundle()
        command = shipped.run_command(bundle)
        result = await ssh.run(command, input=request, seconds=timeout_s, check=False)
        if result.exit_status == shipped.NOT_INSTALLED:
            await self._install(access.host, ssh, bundle)
            result = await ssh.run(command, input=request, seconds=timeout_s, check=False)
        if result.exit_status == shipped.NO_PYTHON:
            raise HostError("the host has no python3 (apt-get install python3)")
        if result.exit_status != 0 or not result.stdout:
            raise HostError(f"the agent gave no answer ({result.failure()})")
        return result.stdout

    async def _install(self, host: str, ssh: SshRunner, bundle: shipped.AgentBundle) -> None:
        lock = self._installing.setdefault(host, asyncio.Lock())
        async with lock:
            await shipped.install(ssh, bundle)
        log.info("installed host agent %s on %s", bundle.version, host)


async def _run_local(request: bytes, timeout_s: float, state_dir: Path | None) -> bytes:
    """The manager's own host: this Python and this package (always the current version)."""
    env = dict(os.environ)
    if state_dir is not None:
        env["CORRAL_AGENT_STATE_DIR"] = str(state_dir)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-I", "-m", "corral.hostagent",
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        async with asyncio.timeout(timeout_s):
            stdout, _ = await process.communicate(request)
    except TimeoutError as err:
        raise OperationTimeout(f"no answer within {timeout_s:g} s") from err
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    if not stdout:
        raise HostError(f"the agent gave no answer (exit status {process.returncode})")
    return stdout


def _streamed_result(what: str, raw: bytes, status: int) -> dict[str, Any]:
    if not raw:
        if status == 255:
            raise HostError(f"{what}: ssh to the host failed (exit status 255)")
        raise HostError(f"{what}: the agent gave no answer (exit status {status})")
    return _result(what, raw)


def _result(what: str, raw: bytes) -> dict[str, Any]:
    expected = shipped.agent_bundle().version
    try:
        reply = json.loads(raw.decode())
    except (UnicodeDecodeError, ValueError) as err:
        raise HostError(f"{what}: the agent's answer is not JSON") from err
    if not isinstance(reply, dict):
        raise HostError(f"{what}: the agent's answer is not a JSON object")
    if reply.get("agent") != expected:
        raise HostError(f"{what}: an agent of another version answered (not {expected})")
    if not reply.get("ok"):
        raise HostError(f"{what} failed: {clean(str(reply.get('error', 'no reason given')))}")
    result = reply.get("result")
    if not isinstance(result, dict):
        raise HostError(f"{what}: the agent's answer has no result")
    return result
