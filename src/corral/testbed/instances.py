"""Several real ``corral serve`` processes on one PostgreSQL database, behind HAProxy.

Every instance shares the first one's data directory (the cluster's CA keys, web CA and power
secrets key: the stand-in for the shared-secrets export until each instance may keep its own
copy), its admin and its token (one database), and has its own port. The load balancer is the
README's HAProxy configuration on a loopback port; :meth:`Instances.cli` runs the real CLI
against it, as a user would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import httpx
from sqlalchemy import create_engine, text

from corral.testbed.corral_server import CorralServer, free_port
from corral.testbed.haproxy import HAProxy

#: Background work a test does not want competing for two cores (it runs when asked).
QUIET = {"CORRAL_RECONCILE_INTERVAL_S": "3600", "CORRAL_METRICS_INTERVAL_S": "3600"}


class Instances:
    """``count`` instances named a, b, c… and HAProxy in front; ``start()``/``stop()``."""

    def __init__(
        self,
        base_dir: Path,
        libvirt_uri: str,
        database_url: str,
        *,
        count: int = 3,
        extra_env: dict[str, str] | None = None,
        host_path_roots: Sequence[str | os.PathLike[str]] = (),
    ) -> None:
        self._database_url = database_url
        env = {
            **QUIET,
            "CORRAL_DATABASE_URL": database_url,
            # HAProxy's X-Forwarded-For is believed from loopback only.
            "CORRAL_TRUSTED_PROXIES": '["127.0.0.1"]',
            **(extra_env or {}),
        }
        names = "abcdefghijklmnopqrstuvwxyz"[:count]
        self.servers = [
            CorralServer(base_dir / n, libvirt_uri, extra_env=env, host_path_roots=host_path_roots)
            for n in names
        ]
        shared_data = self.servers[0].env["CORRAL_DATA_DIR"]
        for server in self.servers[1:]:
            server.env["CORRAL_DATA_DIR"] = shared_data
        #: HAProxy's name for each instance's server line.
        self.by_name = dict(zip(names, self.servers, strict=True))
        backends = [(n, f"127.0.0.1:{s.port}") for n, s in self.by_name.items()]
        self.lb = HAProxy(base_dir / "haproxy", free_port(), backends)

    @property
    def url(self) -> str:
        """The load balancer's URL: what users and the CLI are given."""
        return self.lb.url

    @property
    def token(self) -> str:
        return self.servers[0].token

    def start(self, timeout: float = 120) -> None:
        self.start_first(timeout)
        self.start_others(timeout)

    def start_first(self, timeout: float = 120) -> None:
        """Only the first instance (it initialises the database), no load balancer yet."""
        self.servers[0].start(timeout)

    def start_others(self, timeout: float = 120) -> None:
        first, *others = self.servers
        for server in others:  # started side by side: each takes seconds to import
            server.token = first.token
            server.admin_password = first.admin_password
            server.launch()
        for server in others:
            server.wait_ready(timeout)
        self.lb.start()

    def stop(self) -> None:
        self.lb.stop()
        for server in reversed(self.servers):
            server.stop()

    def owner_of(self, instance_id: str) -> CorralServer:
        """The server whose process is the instance a task names as its ``owner`` (the
        ``instances`` table records each one's pid)."""
        engine = create_engine(self._database_url)
        try:
            with engine.connect() as connection:
                pid = connection.scalar(
                    text("SELECT pid FROM instances WHERE id = :id"), {"id": instance_id}
                )
        finally:
            engine.dispose()
        return next(s for s in self.servers if s.running and s.pid == pid)

    def client(self) -> httpx.Client:
        """An API client through the load balancer."""
        return httpx.Client(
            base_url=f"{self.url}/api/v1",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=120,
        )

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """The real ``corral`` CLI, through the load balancer, as the first admin."""
        env = {**self.servers[0].env, "CORRAL_URL": self.url, "CORRAL_TOKEN": self.token}
        return subprocess.run(
            [sys.executable, "-m", "corral.cli.main", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def __enter__(self) -> Instances:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
