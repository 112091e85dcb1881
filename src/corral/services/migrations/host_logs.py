"""Error lines from a host's libvirtd log, read over the SSH access Corral recorded at
enrollment: the only place some migration failures are explained ("Lost connection to
destination host"). Best effort and bounded: no SSH access or no log, no lines."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from pathlib import Path

from corral import store
from corral.errors import CorralError
from corral.hostsetup.ssh import SshRunner, SshTarget
from corral.services._db import Db

log = logging.getLogger(__name__)

#: libvirtd's log file where Corral's test bed (and many hosts) keep it, else the journal.
READ_LOG = (
    "f=/var/log/libvirt/libvirtd.log; if [ -r $f ]; then tail -n 2000 $f; "
    "elif command -v journalctl >/dev/null 2>&1; then "
    "journalctl -u libvirtd -u virtqemud --no-pager -o short-iso -n 2000; fi"
)
# "2026-11-28 04:51:36.079+0000: 472: error : qemuMigrationAnyCompleted:1946 : MESSAGE"
_LINE = re.compile(
    r"^(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\.\d+\+0000: \d+: error : [\w]+:\d+ : (?P<msg>.*)$"
)
_NOISE = ("migration statistics are available only on the source host",)


def error_lines(text: str, since: datetime, limit: int = 4) -> tuple[str, ...]:
    """The distinct error messages logged at or after ``since`` (UTC), oldest first (pure)."""
    cutoff = since.strftime("%Y-%m-%d %H:%M:%S")
    seen: list[str] = []
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if not match or match["at"] < cutoff:
            continue
        message = match["msg"].strip()
        if message and message not in seen and not any(n in message for n in _NOISE):
            seen.append(message)
    return tuple(seen[-limit:])


class HostLogs:
    def __init__(self, db: Db, known_hosts: Path) -> None:
        self._db = db
        self._known_hosts = known_hosts

    async def libvirtd_errors(self, host: str, since: datetime) -> tuple[str, ...]:
        try:
            row = await self._db(lambda s: store.get_host(s, host))
            ssh = store.host_ssh(row)
            if ssh is None:
                return ()
            runner = SshRunner(
                SshTarget(ssh.destination, ssh.port, ssh.key_path), self._known_hosts, 5
            )
            result = await runner.run(READ_LOG, seconds=10, check=False)
        except (CorralError, ValueError) as exc:
            log.info("could not read the libvirtd log of %s: %s", host, exc)
            return ()
        return error_lines(result.text, since)
