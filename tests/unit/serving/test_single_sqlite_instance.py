"""A second ``corral serve`` on the same SQLite database is refused; a killed first one frees
it (the guard is a lock the kernel drops with the process)."""

from __future__ import annotations

from pathlib import Path

from corral.services.sqlite_guard import SqliteGuard
from corral.testbed.corral_server import CorralServer


def _server(base: Path, data_dir: Path) -> CorralServer:
    return CorralServer(
        base,
        "test:///default",
        accelerator=None,
        extra_env={
            "CORRAL_DATA_DIR": str(data_dir),
            "CORRAL_POOL_DIR": str(data_dir / "pool"),
            "CORRAL_RECONCILE_INTERVAL_S": "3600",
        },
    )


def test_a_second_instance_on_sqlite_is_refused_until_the_first_dies(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = _server(tmp_path / "first", data)
    second = _server(tmp_path / "second", data)
    first.start()
    try:
        second.token = first.token  # one database: the first's admin and token
        second.launch()
        assert second.wait(timeout=60) == 1
        log = second.log_tail()
        assert "SQLite serves one instance only" in log and "PostgreSQL" in log
        assert f"pid {first.pid}" in log  # the message names the instance holding it
        with first.client() as client:
            assert client.get("/tasks").status_code == 200  # the first serves on
        first.kill()
        # Nothing is left behind: the next instance (here this process) takes the lock.
        guard = SqliteGuard(f"sqlite:///{data / 'corral.db'}", "the next instance")
        guard.acquire()
        guard.release()
    finally:
        first.stop()
        second.stop()
