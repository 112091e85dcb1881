"""One instance per SQLite database: several instances need PostgreSQL.

SQLite is the embedded database of a single Corral process. A second ``corral serve`` on the
same file would run the reconciler, the power policy and every task a second time, so it is
refused at start. The guard is an exclusive ``flock`` on a file next to the database: the
kernel drops it with the process, however it ends (``kill -9`` included), so a crash never
leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from sqlalchemy import make_url

from corral.errors import Conflict


def lock_path(database_url: str) -> Path | None:
    """The lock file of a SQLite database (None: not SQLite)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        return None
    return Path(f"{url.database}.instance-lock")


class SqliteGuard:
    def __init__(self, database_url: str, who: str) -> None:
        self._path = lock_path(database_url)
        self._who = who
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock (nothing to do on PostgreSQL); Conflict naming the instance that
        holds it."""
        if self._path is None or self._fd is not None:
            return
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 512).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise Conflict(
                f"another Corral instance ({holder}) already uses the SQLite database "
                f"{self._path.with_suffix('')}: SQLite serves one instance only. To run "
                "several instances, put them all on one PostgreSQL database (database_url = "
                "postgresql+psycopg://USER:PASSWORD@HOST/DB)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, self._who.encode())
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
