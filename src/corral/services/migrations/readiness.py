"""Are the hosts themselves ready for a transport? Runs each transport's
:meth:`~corral.virt.transports.MigrationTransport.prerequisites` with a command runner on the
source host, over the SSH access Corral recorded at enrollment (so a command runs as the
source host runs it: its network, its ``/etc/hosts``, root's keys and known hosts there).

When Corral cannot run commands on the source (added by URI, or its SSH fails) the answer is
*unknown*, not a refusal: libvirt may still get through, and its own error then names the
cause (``explain.py``).
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from corral import store
from corral.errors import CorralError, HostUnreachable
from corral.hostsetup.ssh import SshRunner, SshTarget
from corral.services._db import Db
from corral.virt.transports import CommandResult, MigrationEndpoint, MigrationTransport

log = logging.getLogger(__name__)

#: The whole probe, Corral's SSH to the source included.
PROBE_S = 30.0
#: Printed after the command with its exit status: Corral's own SSH reports 255 for its own
#: failures, which must not be confused with the probed command's 255 (ssh's failure code).
_EXIT = "corral-exit-status="


@dataclass(frozen=True)
class Readiness:
    #: Why the hosts are not ready (each quotes the cause and says what to do).
    problems: tuple[str, ...] = ()
    #: Why the prerequisites could not be checked (None: they were, or there are none).
    unknown: str | None = None


def parse_exit(text: str) -> CommandResult:
    """The probed command's output and exit status from what the wrapper printed (pure)."""
    body, _, status = text.rstrip("\n").rpartition(_EXIT)
    try:
        return CommandResult(int(status.strip()), body)
    except ValueError:
        return CommandResult(-1, text)


class SourceCommands:
    """Runs a command on a host over Corral's recorded SSH access (one connection each)."""

    def __init__(self, db: Db, known_hosts: Path) -> None:
        self._db = db
        self._known_hosts = known_hosts

    async def run(self, host: str, argv: Sequence[str]) -> CommandResult:
        row = await self._db(lambda s: store.get_host(s, host))
        ssh = store.host_ssh(row)
        if ssh is None:
            raise HostUnreachable(
                f"Corral has no SSH access to {host} on record (it was added by URI)"
            )
        runner = SshRunner(SshTarget(ssh.destination, ssh.port, ssh.key_path), self._known_hosts)
        line = f"{shlex.join(argv)} </dev/null 2>&1; echo {_EXIT}$?"
        result = await runner.run(line, seconds=PROBE_S, check=False)
        return parse_exit(result.text)


class TransportReadiness:
    def __init__(self, commands: SourceCommands) -> None:
        self._commands = commands

    async def check(
        self,
        transport: MigrationTransport,
        source: MigrationEndpoint,
        destination: MigrationEndpoint,
    ) -> Readiness:
        """``transport``'s prerequisites between the two hosts, checked on the source."""

        async def run(argv: Sequence[str]) -> CommandResult:
            return await self._commands.run(source.name, argv)

        try:
            problems = await transport.prerequisites(source, destination, run)
        except CorralError as exc:
            log.info("prerequisites of %s from %s to %s unknown: %s", transport.name,
                     source.name, destination.name, exc.message)  # fmt: skip
            return Readiness(unknown=f"not checked on {source.name}: {exc.message}")
        return Readiness(problems=tuple(problems))
