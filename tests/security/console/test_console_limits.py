"""What a viewer can do to a VM's consoles, against a real guest (TCG) through a real server
with the default settings: 40 silent VNC tickets and sockets leave operators their console
and typing, and close by themselves within 10 s or at once when the viewer is deleted; two
viewers and an operator share the serial console, and only the operator's keys reach the guest;
event streams are capped per user. One guest for the module."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import libvirt
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from corral.rfb import RFBClient
from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import KernelGuest
from tests.integration.api._support import SerialShell, kernel_vm, wait_log

pytestmark = pytest.mark.integration

NAME = "limits-guest"
PASSWORD = "viewer-password-123"
GREETING = b"RFB 003.008\n"
#: The defaults (README, configuration): what this module's server runs with.
HANDSHAKE_TIMEOUT_S, CONSOLES_PER_USER, TICKETS_PER_USER, STREAMS_PER_USER = 10, 8, 8, 10


@pytest.fixture(scope="module")
def client(corral: CorralServer) -> Iterator[httpx.Client]:
    with corral.client() as c:
        yield c


@pytest.fixture(scope="module")
def vm(client: httpx.Client, corral: CorralServer, kernel_guest: KernelGuest) -> Iterator[str]:
    made = client.post("/vms", json=kernel_vm(NAME, kernel_guest, disk_gib=None, start=True))
    assert made.status_code == 201, made.text
    wait_log(client, NAME, rb"CORRAL-GUEST-BOOTED")
    SerialShell(corral, NAME).run("(cat /dev/tty1 >/dev/ttyS0 &)")  # typed lines reach the log
    yield NAME
    client.post(f"/vms/{NAME}/stop")
    client.delete(f"/vms/{NAME}")


@dataclass
class User:
    name: str
    headers: dict[str, str]


@pytest.fixture
def make_viewer(client: httpx.Client, corral: CorralServer) -> Iterator[Callable[[], User]]:
    made: list[str] = []

    def make() -> User:
        name = f"viewer-{secrets.token_hex(3)}"
        answer = client.post("/users", json={"name": name, "password": PASSWORD, "role": "viewer"})
        assert answer.status_code == 201, answer.text
        login = httpx.post(
            f"{corral.url}/api/v1/auth/login", json={"username": name, "password": PASSWORD}
        )
        assert login.status_code == 201, login.text
        made.append(name)
        return User(name, {"Authorization": f"Bearer {login.json()['secret']}"})

    yield make
    for name in made:
        client.delete(f"/users/{name}")


@pytest.fixture
def sockets() -> Iterator[contextlib.ExitStack]:
    """Where a test's WebSockets are entered (and closed, at its end)."""
    with contextlib.ExitStack() as stack:
        yield stack


def _ticket(corral: CorralServer, headers: dict[str, str], kind: str) -> httpx.Response:
    return httpx.post(
        f"{corral.url}/api/v1/vms/{NAME}/console/ticket", json={"kind": kind}, headers=headers
    )


def _ws(corral: CorralServer, path: str) -> str:
    return corral.url.replace("http", "ws", 1) + path


@dataclass
class Silent:
    """A VNC socket that got the greeting and never answers; ``closed_at`` when it closed."""

    ws: ClientConnection
    opened_at: float
    closed_at: float | None = None
    reason: str = ""
    _done: threading.Event = field(default_factory=threading.Event)

    def watch(self) -> None:
        def run() -> None:
            with contextlib.suppress(ConnectionClosed):
                while True:
                    self.ws.recv()
            self.closed_at = time.monotonic()
            self.reason = self.ws.close_reason or ""
            self._done.set()

        threading.Thread(target=run, daemon=True).start()

    def wait_closed(self, timeout: float) -> float:
        assert self._done.wait(timeout), "the silent socket is still open"
        assert self.closed_at is not None and self.ws.close_code == 1008, self.ws.close_code
        return self.closed_at


def _open_silent(
    stack: contextlib.ExitStack, corral: CorralServer, url: str, headers: dict[str, str]
) -> Silent:
    ws = stack.enter_context(
        ws_connect(_ws(corral, url), additional_headers=headers, subprotocols=["binary"])  # type: ignore[list-item]
    )
    silent = Silent(ws, time.monotonic())
    assert ws.recv(timeout=10) == GREETING  # accepted; the relay waits for the browser
    silent.watch()
    return silent


def _refused_status(corral: CorralServer, url: str, headers: dict[str, str]) -> tuple[int, str]:
    with (
        pytest.raises(InvalidStatus) as refused,
        ws_connect(_ws(corral, url), additional_headers=headers, subprotocols=["binary"]),  # type: ignore[list-item]
    ):
        pass
    response = refused.value.response
    return response.status_code, response.body.decode() if response.body else ""


def _operator_types_through_its_console(corral: CorralServer, client: httpx.Client) -> None:
    """An operator's console shows the screen, and `vm type` reaches the guest."""

    async def look() -> None:
        answer = _ticket(corral, {"Authorization": f"Bearer {corral.token}"}, "vnc")
        assert answer.status_code == 201, answer.text
        url = _ws(corral, answer.json()["url"])
        async with await RFBClient.connect_websocket(
            url, headers={"Authorization": f"Bearer {corral.token}"}
        ) as vnc:
            assert (await vnc.screenshot(timeout=20)).shape[:2] == (400, 720)

    asyncio.run(look())
    line = f"typed-past-silent-sockets-{secrets.token_hex(4)}"
    typed = client.post(f"/vms/{NAME}/console/type", json={"text": line + "\n"})
    assert typed.status_code == 204, typed.text
    wait_log(client, NAME, re.escape(line.encode()) + rb"\r?\n", timeout=30)


def test_forty_silent_viewer_sockets_leave_operators_their_console_and_typing(
    corral: CorralServer,
    client: httpx.Client,
    vm: str,
    make_viewer: Callable[[], User],
    sockets: contextlib.ExitStack,
) -> None:
    viewer = make_viewer()
    answers = [_ticket(corral, viewer.headers, "vnc") for _ in range(40)]
    granted = [a.json()["url"] for a in answers if a.status_code == 201]
    refused = [a for a in answers if a.status_code != 201]
    assert len(granted) == TICKETS_PER_USER
    assert {a.status_code for a in refused} == {429}
    assert "unused console tickets" in refused[0].json()["detail"]
    silent = [_open_silent(sockets, corral, url, viewer.headers) for url in granted[:-1]]
    spare = _ticket(corral, viewer.headers, "vnc")  # its tickets used up: one more, for now
    assert spare.status_code == 201, spare.text
    silent.append(_open_silent(sockets, corral, granted[-1], viewer.headers))
    # At the cap: no more tickets, and a ticket got before opens no socket.
    more = _ticket(corral, viewer.headers, "vnc")
    assert more.status_code == 429
    assert f"already holds {CONSOLES_PER_USER} open consoles" in more.json()["detail"]
    status, body = _refused_status(corral, spare.json()["url"], viewer.headers)
    assert status == 429 and f"already holds {CONSOLES_PER_USER} open consoles" in body

    _operator_types_through_its_console(corral, client)

    # The silent sockets close by themselves, HANDSHAKE_TIMEOUT_S after they were accepted.
    for s in silent:
        waited = s.wait_closed(timeout=HANDSHAKE_TIMEOUT_S + 10) - s.opened_at
        assert f"handshake within {HANDSHAKE_TIMEOUT_S} s" in s.reason
        # The server's deadline is 10 s from the accept; the margin is this machine's load.
        assert HANDSHAKE_TIMEOUT_S - 0.5 <= waited <= HANDSHAKE_TIMEOUT_S + 1.5, waited


def test_a_deleted_viewers_silent_sockets_close_at_once(
    corral: CorralServer,
    client: httpx.Client,
    vm: str,
    make_viewer: Callable[[], User],
    sockets: contextlib.ExitStack,
) -> None:
    viewer = make_viewer()
    urls = [_ticket(corral, viewer.headers, "vnc").json()["url"] for _ in range(CONSOLES_PER_USER)]
    silent = [_open_silent(sockets, corral, url, viewer.headers) for url in urls]
    deleted_at = time.monotonic()
    assert client.delete(f"/users/{viewer.name}").status_code == 204
    for s in silent:
        assert s.wait_closed(timeout=5) - deleted_at < 2  # not the 5-s check, not the 10-s timeout
        assert "user was deleted" in s.reason
    assert max(s.closed_at or 0 for s in silent) - silent[0].opened_at < HANDSHAKE_TIMEOUT_S
    _operator_types_through_its_console(corral, client)


class SerialReader:
    """One serial console WebSocket; ``wait_for`` reads until a pattern shows up."""

    def __init__(
        self, stack: contextlib.ExitStack, corral: CorralServer, url: str, headers: dict[str, str]
    ) -> None:
        self.ws = stack.enter_context(ws_connect(_ws(corral, url), additional_headers=headers))
        self.seen = b""

    def wait_for(self, pattern: bytes, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while pattern not in self.seen:
            data = self.ws.recv(timeout=max(0.1, deadline - time.monotonic()))
            self.seen += data if isinstance(data, bytes) else data.encode()


def test_two_viewers_and_an_operator_share_the_serial_console(
    corral: CorralServer,
    client: httpx.Client,
    vm: str,
    make_viewer: Callable[[], User],
    sockets: contextlib.ExitStack,
) -> None:
    token = secrets.token_hex(4)
    # The operator first: a viewer arriving later used to take the console away from them.
    operator = SerialReader(
        sockets, corral, f"/api/v1/vms/{NAME}/serial", {"Authorization": f"Bearer {corral.token}"}
    )
    viewers = []
    for _ in range(2):
        user = make_viewer()
        ticket = _ticket(corral, user.headers, "serial")
        assert ticket.status_code == 201 and ticket.json()["view_only"] is True
        viewers.append(SerialReader(sockets, corral, ticket.json()["url"], user.headers))
    everyone = [operator, *viewers]
    for n, viewer in enumerate(viewers):
        viewer.ws.send(f"echo viewer{n}-$((6*7))-{token}\n".encode())
    # The shell prints the sum, never the command line: only a command that ran shows it.
    for round_ in range(2):
        operator.ws.send(f"echo op{round_}-$((40+2))-{token}\n".encode())
        for reader in everyone:
            reader.wait_for(f"op{round_}-42-{token}".encode())
    for reader in everyone:
        assert reader.ws.close_code is None  # nobody was kicked
        assert f"-42-{token}".encode() in reader.seen
        assert b"viewer0-42" not in reader.seen and b"viewer1-42" not in reader.seen
    log = client.get(f"/vms/{NAME}/log").content
    assert f"op1-42-{token}".encode() in log and f"viewer0-42-{token}".encode() not in log


def test_a_console_held_outside_corral_is_refused_to_viewers_and_taken_by_operators(
    corral: CorralServer,
    vm: str,
    make_viewer: Callable[[], User],
    sockets: contextlib.ExitStack,
    conn: libvirt.virConnect,
) -> None:
    """`virsh console` on the host holds the console: a viewer is told so (409) and takes
    nothing; an operator takes it over, as `virsh console --force` would."""
    dom = conn.lookupByName(NAME)
    outside = conn.newStream(0)

    def attach() -> bool:
        try:
            dom.openConsole(None, outside, 0)  # no force: waits for Corral's readers to leave
        except libvirt.libvirtError:
            return False
        return True

    wait_until(attach, 10, "the console to be free of Corral's readers", interval=0.2)
    try:
        viewer = make_viewer()
        ticket = _ticket(corral, viewer.headers, "serial")
        status, body = _refused_status(corral, ticket.json()["url"], viewer.headers)
        assert status == 409 and "virsh console" in body, body
        operator = SerialReader(
            sockets,
            corral,
            f"/api/v1/vms/{NAME}/serial",
            {"Authorization": f"Bearer {corral.token}"},
        )
        token = secrets.token_hex(4)
        operator.ws.send(f"echo took-$((40+2))-{token}\n".encode())
        operator.wait_for(f"took-42-{token}".encode())
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            outside.abort()


def test_event_streams_are_capped_per_user_and_end_when_the_user_goes(
    corral: CorralServer, client: httpx.Client, make_viewer: Callable[[], User]
) -> None:
    viewer = make_viewer()
    limits = httpx.Limits(max_connections=STREAMS_PER_USER + 2)
    with (
        httpx.Client(base_url=corral.url, headers=viewer.headers, limits=limits) as http,
        contextlib.ExitStack() as stack,
    ):
        streams = [
            stack.enter_context(http.stream("GET", "/api/v1/events", timeout=10))
            for _ in range(STREAMS_PER_USER)
        ]
        assert all(s.status_code == 200 for s in streams)
        over = http.get("/api/v1/events", timeout=10)
        assert over.status_code == 429
        assert f"already has {STREAMS_PER_USER} event streams open" in over.json()["detail"]
        assert client.delete(f"/users/{viewer.name}").status_code == 204
        started = time.monotonic()
        for s in streams:
            lines = s.iter_lines()
            while next(lines) != "event: end":
                pass
            assert "user was deleted" in next(lines)
        assert time.monotonic() - started < 3
