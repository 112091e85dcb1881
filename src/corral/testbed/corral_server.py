"""A real Corral manager process for integration tests, benchmarks and demos.

Runs ``corral admin init`` and ``corral serve`` as subprocesses with their own data directory,
CLI config directory and port, against a given libvirt URI (normally a private libvirtd).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import httpx

from corral.errors import OperationTimeout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class CorralServer:
    """``start()`` initialises (first time) and serves; ``restart()`` keeps the data.

    Files under ``host_path_roots`` and under ``base_dir``'s parent (a test session's temporary
    directory) may be named by path, as the admin the server's token belongs to."""

    def __init__(
        self,
        base_dir: Path,
        libvirt_uri: str,
        *,
        accelerator: str | None = "tcg",
        extra_env: dict[str, str] | None = None,
        host_path_roots: Sequence[str | os.PathLike[str]] = (),
    ) -> None:
        self.base_dir = base_dir
        roots = [str(base_dir.parent), *(str(r) for r in host_path_roots)]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "CORRAL_DATA_DIR": str(base_dir / "data"),
            "CORRAL_CONFIG": str(base_dir / "corral.toml"),
            "CORRAL_CONFIG_DIR": str(base_dir / "cli"),
            "CORRAL_LOCAL_HOST_URI": libvirt_uri,
            "CORRAL_LISTEN_PORT": str(self.port),
            "CORRAL_URL": self.url,
            "CORRAL_LOG_LEVEL": "info",
            "CORRAL_HOST_PATH_ROOTS": json.dumps(roots),
            "COLUMNS": "200",
            **(extra_env or {}),
        }
        if accelerator:
            self.env["CORRAL_LOCAL_HOST_ACCELERATOR"] = accelerator
        self.log_path = base_dir / "server.log"
        self._process: subprocess.Popen[bytes] | None = None
        self.admin_password = ""
        self.token = ""

    def _corral(self) -> list[str]:
        return [sys.executable, "-m", "corral.cli.main"]

    def cli(
        self, *args: str, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run the real ``corral`` CLI, logged in as the first admin."""
        return subprocess.run(
            [*self._corral(), *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    @property
    def pid(self) -> int:
        """The serving process (uvicorn runs in it: no workers)."""
        if self._process is None:
            raise RuntimeError("the server is not running")
        return self._process.pid

    def launch(self) -> None:
        """Initialise (the first time) and start ``corral serve``, without waiting for it."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if not self.token:
            init = self.cli("admin", "init")
            if init.returncode != 0:
                raise RuntimeError(f"corral admin init failed:\n{init.stdout}\n{init.stderr}")
            lines = [line.strip() for line in init.stdout.splitlines() if line.strip()]
            self.admin_password = lines[lines.index(next(x for x in lines if "password" in x)) + 1]
            creds = (self.base_dir / "cli" / "credentials.toml").read_text()
            self.token = next(
                line.split("=", 1)[1].strip().strip('"')
                for line in creds.splitlines()
                if line.startswith("token ")
            )
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [*self._corral(), "serve"], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def start(self, timeout: float = 60, *, until_ready: bool = True) -> None:
        """Serve; return once ``/healthz`` says ready (``until_ready=False``: as soon as the
        port answers at all, "starting" included)."""
        self.launch()
        self.wait_ready(timeout, until_ready=until_ready)

    def wait_ready(self, timeout: float = 60, *, until_ready: bool = True) -> None:
        """After :meth:`launch`: return once ``/healthz`` says ready (see :meth:`start`)."""
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"corral serve exited:\n{self.log_tail()}")
            try:
                answer = httpx.get(f"{self.url}/healthz", timeout=1)
                if answer.status_code == 200 or not until_ready:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise OperationTimeout(
            f"corral serve did not answer within {timeout} s:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    @property
    def running(self) -> bool:
        """Started and not ended (a crash ends it too)."""
        return self._process is not None and self._process.poll() is None

    def wait(self, timeout: float) -> int:
        """Wait for the server to end by itself; its exit status."""
        if self._process is None:
            raise RuntimeError("the server is not running")
        code = self._process.wait(timeout=timeout)
        self._process = None
        return code

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to clean up."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, size: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-size:].decode(errors="replace")
        except FileNotFoundError:
            return ""

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.url}/api/v1",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=120,
        )

    def __enter__(self) -> CorralServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
