"""HAProxy in front of several Corral instances: the configuration the README shows, and a
``haproxy`` process running it for tests and benchmarks.

:func:`haproxy_config` writes the README's example (``tls=True``: HTTPS at the front with the
site's certificate, HTTPS to each instance checked against Corral's web CA); tests and benches run
the same text without TLS on loopback, where Corral serves plain HTTP.
"""

from __future__ import annotations

import csv
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import httpx

from corral.errors import OperationTimeout

#: Where the README's example keeps the site's certificate and Corral's web CA.
SITE_PEM = "/etc/haproxy/corral.pem"
WEB_CA = "/etc/haproxy/corral-web-ca.pem"

# Why each line (the README says it in words): long client/server/tunnel timeouts keep event
# streams (a comment every 15 s) and consoles (WebSockets) open; a request whose connection to
# an instance fails is sent to another (redispatch; only connection failures are retried, so a
# POST an instance may have received is never sent twice); /healthz answers 200 only once an
# instance is ready, and a dead one is out of the rotation after two failed checks.
_HEAD = """\
global
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout check 2s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    option forwardfor
    option redispatch 1
    retries 3
    retry-on conn-failure

frontend corral
    bind {bind}{bind_tls}
    http-request set-header X-Forwarded-Proto {proto}
    default_backend instances

backend instances
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter {inter} fall 2 rise 2{server_tls}
"""


_TEST_GLOBAL = """\
global
    stats socket {socket} mode 600
    log stdout format raw local0
"""
_TEST_FRONTEND = """\
frontend corral
    log global
    option httplog
    option logasap
    capture request header Last-Event-ID len 20
"""

#: A request's line in the ``option httplog`` format: ``corral instances/b … {31} "GET /p …"``.
_LOG_LINE = re.compile(
    r" corral instances/(?P<server>\S+) .*\{(?P<last_event_id>[^}]*)\} "
    r'"[A-Z]+ (?P<path>[^ ?"]+)'
)


def haproxy_config(
    bind: str, servers: Sequence[tuple[str, str]], *, tls: bool = True, inter: str = "1s"
) -> str:
    """The configuration for ``servers`` (name, ``ADDRESS:PORT``) behind ``bind``."""
    text = _HEAD.format(
        bind=bind,
        bind_tls=f" ssl crt {SITE_PEM}" if tls else "",
        proto="https" if tls else "http",
        inter=inter,
        server_tls=f" ssl verify required ca-file {WEB_CA}" if tls else "",
    )
    return text + "".join(f"    server {name} {addr} check\n" for name, addr in servers)


class HAProxy:
    """``haproxy`` in the foreground with a generated configuration (stopped on exit)."""

    def __init__(self, base_dir: Path, port: int, servers: Sequence[tuple[str, str]]) -> None:
        self.base_dir = base_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        # Checks every 200 ms: a test sees a dead instance leave the rotation quickly.
        text = haproxy_config(f"127.0.0.1:{port}", servers, tls=False, inter="200ms")
        # Not in the README's text: a stats socket, so tests read which instance serves what,
        # and a line per request (on stdout: the log file) once its answer begins, with the
        # server it went to and the Last-Event-ID it named.
        self.stats_socket = base_dir / "haproxy.sock"
        text = text.replace("global\n", _TEST_GLOBAL.format(socket=self.stats_socket), 1)
        text = text.replace("frontend corral\n", _TEST_FRONTEND, 1)
        self.config = base_dir / "haproxy.cfg"
        self.log_path = base_dir / "haproxy.log"
        self._process: subprocess.Popen[bytes] | None = None
        base_dir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(text)

    def start(self, timeout: float = 30) -> None:
        binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
        with self.log_path.open("ab") as log:
            # -db: stay in the foreground (its pid is ours to end); -W off: no master process.
            self._process = subprocess.Popen(
                [binary, "-db", "-f", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"haproxy exited:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise OperationTimeout(f"haproxy did not serve within {timeout} s")

    def current_sessions(self) -> dict[str, int]:
        """Each server's current sessions (``scur`` of ``show stat``): requests HAProxy is
        relaying to it right now, an open event stream among them."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stats:
            stats.settimeout(5)
            stats.connect(str(self.stats_socket))
            stats.sendall(b"show stat\n")
            chunks = []
            while chunk := stats.recv(65536):
                chunks.append(chunk)
        lines = b"".join(chunks).decode().removeprefix("# ").splitlines()
        return {
            row["svname"]: int(row["scur"] or 0)
            for row in csv.DictReader(lines)
            if row["pxname"] == "instances" and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def requests(self, path: str) -> list[tuple[str, str]]:
        """The requests for ``path`` so far: the server each went to and the Last-Event-ID it
        named ("" if none), read from the log."""
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            parsed = _LOG_LINE.search(line)
            if parsed and parsed["path"] == path:
                found.append((parsed["server"], parsed["last_event_id"]))
        return found

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def __enter__(self) -> HAProxy:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
