"""The edge of a real ``corral serve`` (uvicorn with uvloop, as ``make run`` serves): what a
stranger can do before any login, and what the port answers while the manager starts."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.private_libvirtd import PrivateLibvirtd

MIB = 2**20
LOGIN = "/api/v1/auth/login"


def _rss_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


_HEAD, _TAIL = b'{"username": "admin", "password": "', b'"}'


def _json_body(mib: int) -> Iterator[bytes]:
    """A login body with a password of ``mib`` MiB, made as it is sent (never held whole)."""
    yield _HEAD
    block = b"x" * MIB
    for _ in range(mib):
        yield block
    yield _TAIL


def test_a_150_mb_login_body_is_refused_without_memory(corral: CorralServer) -> None:
    """Anonymous, before any check of the password: 413 at once when Content-Length says so,
    after at most ``max_body_bytes`` when the body is chunked; the server's memory stays."""
    length = len(_HEAD) + 150 * MIB + len(_TAIL)
    with httpx.Client(base_url=corral.url, timeout=60) as client:
        # Warm up the paths taken (imports, first-request caches) before measuring.
        client.post(LOGIN, content=b"x" * (2 * MIB), headers={"Content-Type": "text/plain"})
        before = _rss_bytes(corral.pid)
        declared = client.post(
            LOGIN,
            content=_json_body(150),
            headers={"Content-Length": str(length), "Content-Type": "application/json"},
        )
        chunked = client.post(
            LOGIN, content=_json_body(150), headers={"Content-Type": "application/json"}
        )
        after = _rss_bytes(corral.pid)
    for answer in (declared, chunked):
        assert answer.status_code == 413, answer.text
        assert "larger than 1 MiB" in answer.json()["detail"]
        assert answer.headers["connection"] == "close"
    assert after - before < 10 * MIB, f"RSS grew by {(after - before) / MIB:.1f} MiB"


def test_rotating_x_forwarded_for_does_not_escape_the_throttle(corral: CorralServer) -> None:
    """uvicorn believes X-Forwarded-For from 127.0.0.1 unless told not to: the throttle must
    count the TCP peer (no ``trusted_proxies`` here)."""
    statuses = [
        httpx.post(
            f"{corral.url}{LOGIN}",
            json={"username": "rotating-guesser", "password": "guess"},
            headers={"X-Forwarded-For": f"203.0.113.{i}", "X-Real-IP": f"203.0.113.{i}"},
        ).status_code
        for i in range(7)
    ]
    assert statuses == [401] * 5 + [429] * 2


@pytest.mark.parametrize("host", ["rebound.example", "rebound.example:8080", "10.9.9.9"])
def test_a_foreign_host_header_gets_400(corral: CorralServer, host: str) -> None:
    answer = httpx.get(f"{corral.url}/healthz", headers={"Host": host})
    assert answer.status_code == 400
    assert "`public_names`" in answer.json()["detail"]
    for own in ("localhost", f"127.0.0.1:{corral.port}", f"localhost:{corral.port}"):
        assert httpx.get(f"{corral.url}/healthz", headers={"Host": own}).status_code == 200


# -- starting ---------------------------------------------------------------------------------


class HeldDoor:
    """A UNIX socket in front of libvirtd's that keeps every connection waiting, silent, until
    :meth:`open`: a daemon still busy with its first QEMU probe, as Corral sees one."""

    def __init__(self, path: Path, target: str) -> None:
        self.path = path
        self._target = target
        self._open = threading.Event()
        self._listener = socket.socket(socket.AF_UNIX)
        self._listener.bind(str(path))
        self._listener.listen()
        self.waiting = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def open(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        self.waiting += 1
        self._open.wait()
        upstream = socket.socket(socket.AF_UNIX)
        upstream.connect(self._target)
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def test_the_port_answers_starting_while_libvirt_is_slow(
    private_libvirtd: PrivateLibvirtd, tmp_path: Path
) -> None:
    """``corral serve`` binds at once: while its first libvirt connection waits, /healthz says
    "starting", the API answers 503 with Retry-After and a browser gets a page that reloads;
    once libvirt answers, everything is served."""
    libvirt_socket = private_libvirtd.uri.split("socket=", 1)[1]
    door = HeldDoor(tmp_path / "held-sock", libvirt_socket)
    server = CorralServer(
        tmp_path / "corral",
        f"qemu+unix:///system?socket={door.path}",
        extra_env={"CORRAL_RECONCILE_INTERVAL_S": "3600"},
    )
    try:
        server.start(until_ready=False)
        wait_until(lambda: door.waiting > 0, 30, "Corral to knock on libvirt's door")
        health = httpx.get(f"{server.url}/healthz", timeout=5)
        assert health.status_code == 503
        assert health.json()["status"] == "starting"
        api = httpx.get(
            f"{server.url}/api/v1/vms",
            headers={"Authorization": f"Bearer {server.token}"},
            timeout=5,
        )
        assert api.status_code == 503 and api.headers["retry-after"] == "5"
        assert "Corral is starting" in api.json()["detail"]
        page = httpx.get(f"{server.url}/", timeout=5)
        assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
        assert "Corral is starting" in page.text and 'http-equiv="refresh"' in page.text
        assert httpx.get(f"{server.url}/healthz", timeout=5).json()["status"] == "starting"

        door.open()
        ready = wait_until(
            lambda: (a := httpx.get(f"{server.url}/healthz", timeout=5)).status_code == 200 and a,
            60,
            "Corral to be ready",
            interval=0.2,
        )
        assert ready.json() == {"status": "ok", "state": "ready"}
        with server.client() as client:
            hosts = client.get("/hosts").json()["items"]
        assert [(h["name"], h["connected"]) for h in hosts] == [("local", True)]
    finally:
        server.stop()
        door.close()


def test_a_failed_start_ends_the_server_with_status_1(
    private_libvirtd: PrivateLibvirtd, tmp_path: Path
) -> None:
    """A start that cannot finish (here: a CA whose key is gone, which Corral refuses to paper
    over with a new key) is not left answering "starting" for ever: the server exits 1, the
    reason in its log, not in its answers."""
    server = CorralServer(tmp_path, private_libvirtd.uri)
    init = server.cli("admin", "init")
    assert init.returncode == 0, init.stderr
    server.token = "set"  # initialised: launch() only serves
    key = tmp_path / "data" / "pki" / "web-ca" / "ca-key.pem"
    assert key.is_file()
    key.unlink()
    try:
        server.launch()
        assert server.wait(timeout=60) == 1
    finally:
        server.stop()
    log = server.log_tail()
    assert "Corral could not start" in log and "restore the key from a backup" in log
