"""The console proxy against a real guest: input passes for operators, is dropped for viewers
(server-side, whatever the viewer's client does), and a malformed client message ends the
session. The guest copies what its VGA console's keyboard receives (tty1) to its serial port,
so the serial log shows exactly which keys arrived."""

from __future__ import annotations

import asyncio
import re
import secrets
import struct
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from corral.model.auth import Role
from corral.rfb import RFBClient
from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_images import KernelGuest
from tests.integration.api._support import SerialShell, kernel_vm, wait_log

pytestmark = pytest.mark.integration

NAME = "proxy-guest"
PASSWORD = "viewer-password-123"


@pytest.fixture(scope="module")
def client(corral: CorralServer) -> Iterator[httpx.Client]:
    with corral.client() as c:
        yield c


@pytest.fixture(scope="module")
def vm(client: httpx.Client, corral: CorralServer, kernel_guest: KernelGuest) -> Iterator[str]:
    made = client.post("/vms", json=kernel_vm(NAME, kernel_guest, disk_gib=None, start=True))
    assert made.status_code == 201, made.text
    wait_log(client, NAME, rb"CORRAL-GUEST-BOOTED")
    SerialShell(corral, NAME).run("(cat /dev/tty1 >/dev/ttyS0 &)")
    yield NAME
    client.post(f"/vms/{NAME}/stop")
    client.delete(f"/vms/{NAME}")


@pytest.fixture(scope="module")
def viewer_token(client: httpx.Client, corral: CorralServer) -> str:
    name = f"viewer-{secrets.token_hex(3)}"
    made = client.post("/users", json={"name": name, "password": PASSWORD, "role": "viewer"})
    assert made.status_code == 201, made.text
    login = httpx.post(
        f"{corral.url}/api/v1/auth/login", json={"username": name, "password": PASSWORD}
    )
    assert login.status_code == 201
    token: str = login.json()["secret"]
    return token


def _ws_url(corral: CorralServer, token: str) -> tuple[str, dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}"}
    answer = httpx.post(
        f"{corral.url}/api/v1/vms/{NAME}/console/ticket", json={"kind": "vnc"}, headers=headers
    )
    assert answer.status_code == 201, answer.text
    return corral.url.replace("http", "ws", 1) + answer.json()["url"], headers


async def _type_through_proxy(corral: CorralServer, token: str, text: str) -> None:
    url, headers = _ws_url(corral, token)
    async with await RFBClient.connect_websocket(url, headers=headers) as vnc:
        shot = await vnc.screenshot(timeout=20)
        assert shot.shape[:2] == (400, 720)  # the guest's VGA text screen, relayed
        await vnc.type_text(text)
        await vnc.click(10, 10)
        await vnc.set_clipboard("clipboard from a client")
        await vnc.screenshot(timeout=20)  # a round trip: the input above was sent before it


def test_an_operators_keys_reach_the_guest(
    corral: CorralServer, client: httpx.Client, vm: str
) -> None:
    line = f"proxy-typed-{secrets.token_hex(4)}"
    asyncio.run(_type_through_proxy(corral, corral.token, line + "\n"))
    wait_log(client, vm, re.escape(line.encode()) + rb"\r?\n", timeout=30)


def test_a_viewers_keys_never_reach_the_guest(
    corral: CorralServer, client: httpx.Client, vm: str, viewer_token: str
) -> None:
    sneaky = f"viewer-typed-{secrets.token_hex(4)}"
    asyncio.run(_type_through_proxy(corral, viewer_token, sneaky + "\n"))
    # An operator types after the viewer did: once the guest has that line, it would have had
    # the viewer's (sent earlier) too, had the proxy passed them on.
    marker = f"after-viewer-{secrets.token_hex(4)}"
    typed = client.post(f"/vms/{vm}/console/type", json={"text": marker + "\n"})
    assert typed.status_code == 204, typed.text
    wait_log(client, vm, re.escape(marker.encode()), timeout=30)
    log = client.get(f"/vms/{vm}/log").content
    assert sneaky.encode() not in log
    entries = client.get("/audit", params={"action": "vm.console.vnc", "limit": 50}).json()["items"]
    assert any(e["detail"] == "view-only" and e["outcome"] == "ok" for e in entries)


def _handshake(ws: ClientConnection) -> None:
    """The viewer's side of the relay's handshake, by hand: 3.8, None, shared."""
    assert ws.recv(timeout=10) == b"RFB 003.008\n"
    ws.send(b"RFB 003.008\n")
    assert ws.recv(timeout=10) == b"\x01\x01"
    ws.send(b"\x01")
    assert ws.recv(timeout=10) == b"\x00\x00\x00\x00"
    ws.send(b"\x01")
    server_init = ws.recv(timeout=10)
    assert isinstance(server_init, bytes) and struct.unpack(">HH", server_init[:4]) == (720, 400)


@pytest.mark.parametrize(
    ("message", "says"),
    [
        (b"\x42", "viewer sent"),  # no such client message type
        (struct.pack(">BxxxI", 6, 2 << 20), "ClientCutText"),  # 2 MiB: over the limit
    ],
    ids=["unknown type", "oversize cut text"],
)
def test_a_malformed_client_message_ends_the_session(
    corral: CorralServer, vm: str, message: bytes, says: str
) -> None:
    url, headers = _ws_url(corral, corral.token)
    with ws_connect(url, additional_headers=headers, subprotocols=["binary"]) as ws:  # type: ignore[list-item]
        _handshake(ws)
        ws.send(message)
        with pytest.raises(ConnectionClosed):
            while True:
                ws.recv(timeout=10)
        assert ws.close_code == 1008
        assert says in (ws.close_reason or "")


def test_viewer_role_is_what_the_ticket_says(corral: CorralServer, viewer_token: str) -> None:
    answer = httpx.post(
        f"{corral.url}/api/v1/vms/{NAME}/console/ticket",
        json={"kind": "vnc"},
        headers={"Authorization": f"Bearer {viewer_token}"},
    )
    assert answer.json()["view_only"] is True
    assert Role.VIEWER.value == "viewer"


def test_tickets_never_land_in_the_server_log(corral: CorralServer, vm: str) -> None:
    url, headers = _ws_url(corral, corral.token)
    secret = url.split("ticket=", 1)[1]
    with ws_connect(url, additional_headers=headers, subprotocols=["binary"]) as ws:  # type: ignore[list-item]
        _handshake(ws)
    log = corral.log_path.read_text(errors="replace")
    assert "ticket=***" in log  # uvicorn logged the handshake, redacted
    assert secret not in log
