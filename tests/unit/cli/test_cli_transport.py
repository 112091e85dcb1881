"""The CLI's HTTP over ``http.client`` (``corral.cli.transport``): through a proxy named by
``HTTP_PROXY`` unless ``NO_PROXY`` exempts the server, a keep-alive connection the other end
closed while idle opened again, and query values written as httpx wrote them."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from typer.testing import CliRunner

from corral.cli.client import CorralClient
from corral.cli.main import app
from corral.cli.transport import query
from tests.unit.cli.canned_api import vm_info
from tests.unit.cli.conftest import CannedApi


def _read_message(sock: socket.socket) -> bytes:
    """One HTTP message (head and Content-Length body), or b"" at EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


@contextmanager
def _proxy(seen: list[str], closed: threading.Semaphore) -> Iterator[int]:
    """A forward proxy that relays one request per connection and then closes it (releasing
    ``closed``), with the answer's ``Connection`` header removed: the client takes the
    connection for kept alive. Records each request line."""
    listener = socket.create_server(("127.0.0.1", 0))

    def relay(client: socket.socket) -> None:
        with client:
            request = _read_message(client)
            if not request:
                return
            line, _, rest = request.partition(b"\r\n")
            method, target, version = line.decode().split(" ")
            seen.append(line.decode())
            hostport, _, path = target.removeprefix("http://").partition("/")
            host, _, port = hostport.partition(":")
            origin = f"{method} /{path} {version}\r\n".encode() + rest
            with socket.create_connection((host, int(port))) as upstream:
                upstream.sendall(origin)
                answer = _read_message(upstream)
            head, _, body = answer.partition(b"\r\n\r\n")
            kept = [h for h in head.split(b"\r\n") if not h.lower().startswith(b"connection:")]
            client.sendall(b"\r\n".join(kept) + b"\r\n\r\n" + body)
        closed.release()

    def accept() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=relay, args=(client,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
        listener.close()
        thread.join(timeout=5)


def test_requests_go_through_the_proxy_and_reconnect(
    api: CannedApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.state.vms = {name: vm_info(name) for name in ("web1", "web2")}
    seen: list[str] = []
    closed = threading.Semaphore(0)
    with _proxy(seen, closed) as port:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("NO_PROXY", "")
        # Each request on a connection the proxy closed after the previous answer.
        with CorralClient(api.url, api.state.token) as client:
            for _ in range(3):
                names = [vm["name"] for vm in client.get("/vms").json()["items"]]
                assert names == ["web1", "web2"]
                # Not before the proxy closed it: a request sent meanwhile would be reset.
                assert closed.acquire(timeout=10)
        assert seen == [f"GET {api.url}/api/v1/vms HTTP/1.1"] * 3

        seen.clear()
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        result = CliRunner().invoke(app, ["vm", "list"], env=api.env())
        assert result.exit_code == 0, result.output
        assert "web2" in result.stdout
        assert seen == []


def test_query_values_as_httpx_wrote_them() -> None:
    assert query({"delete_disks": True, "force": False, "limit": 100}) == (
        "delete_disks=true&force=false&limit=100"
    )
    assert query({"host": ["h1", "h 2"], "name_prefix": "a&b"}) == (
        "host=h1&host=h+2&name_prefix=a%26b"
    )
    assert query(None) == ""
