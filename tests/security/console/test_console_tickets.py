"""Console WebSockets refuse every ticket that does not fit, before the upgrade (HTTP 403,
nothing proxied), and audit the refusal. libvirt's test driver stands in for the host: a ticket
that *is* accepted gets the connection upgraded and, once the browser has done its part of the
RFB handshake, as far as opening the screen, which that driver cannot (close code 1011)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from corral.model.auth import Role
from corral.services.console_tickets import TICKET_TTL_S
from tests.unit.api.conftest import SCREEN_VM, Api, api, ensure_screen_vm
from tests.unit.web.conftest import log_in

__all__ = ["api"]


@pytest.fixture(scope="module", autouse=True)
def _screen_vm(api: Api) -> str:
    return ensure_screen_vm(api)


VM = SCREEN_VM
ORIGIN = "http://testserver"


def _ticket(client: TestClient, headers: dict[str, str], kind: str = "vnc") -> dict[str, Any]:
    answer = client.post(f"/api/v1/vms/{VM}/console/ticket", json={"kind": kind}, headers=headers)
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _refusal(client: TestClient, url: str, headers: dict[str, str]) -> WebSocketDenialResponse:
    with (
        pytest.raises((WebSocketDenialResponse, WebSocketDisconnect)) as caught,
        client.websocket_connect(url, headers=headers),
    ):
        pass
    assert isinstance(caught.value, WebSocketDenialResponse), "refused after the upgrade"
    return caught.value


def _gets_through(client: TestClient, url: str, headers: dict[str, str]) -> str:
    """Play the browser's side of the handshake on an accepted ticket; the close reason."""
    with client.websocket_connect(url, headers=headers) as ws:
        assert ws.receive_bytes() == b"RFB 003.008\n"
        ws.send_bytes(b"RFB 003.008\n")
        assert ws.receive_bytes() == b"\x01\x01"
        ws.send_bytes(b"\x01")
        assert ws.receive_bytes() == b"\0\0\0\0"
        ws.send_bytes(b"\x01")  # ClientInit: only now does the proxy open the VM's screen
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_bytes()
    assert closed.value.code == 1011, closed.value
    return closed.value.reason


def _denied_entries(api: Api) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = api.client.get(
        "/api/v1/audit", params={"action": "vm.console.vnc", "limit": 1000}, headers=api.headers()
    ).json()["items"]
    return [e for e in entries if e["outcome"] == "denied"]


@pytest.fixture
def browser(api: Api) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """A logged-in browser session: the client and the headers its page's requests carry."""
    client = TestClient(api.client.app)
    csrf = log_in(client)
    yield client, {"X-CSRF-Token": csrf, "Origin": ORIGIN}


def test_an_accepted_ticket_gets_past_the_checks(api: Api) -> None:
    ticket = _ticket(api.client, api.headers())
    assert ticket["url"] == f"/api/v1/vms/{VM}/vnc?ticket={ticket['ticket']}"
    assert ticket["expires_in_s"] == TICKET_TTL_S and ticket["view_only"] is False
    reason = _gets_through(api.client, ticket["url"], api.headers())
    assert "open the screen (VNC)" in reason  # the test driver has none: every check passed


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("missing", "unknown or already used"),
        ("forged", "unknown or already used"),
        ("reused", "unknown or already used"),
        ("other kind", "opens a serial console"),
        ("other vm", f"console of VM '{VM}', not 'other'"),
        ("another token", "issued to another session"),
        ("no credentials", "needs an API token"),
    ],
)
def test_tickets_that_do_not_fit_are_refused_and_audited(api: Api, case: str, says: str) -> None:
    headers = api.headers()
    before = len(_denied_entries(api))
    url = f"/api/v1/vms/{VM}/vnc?ticket="
    if case == "forged":
        url += "x" * 43
    elif case == "reused":
        ticket = _ticket(api.client, headers)
        _gets_through(api.client, ticket["url"], headers)  # used once
        url = ticket["url"]
    elif case == "other kind":
        url += _ticket(api.client, headers, kind="serial")["ticket"]
    elif case == "other vm":
        url = f"/api/v1/vms/other/vnc?ticket={_ticket(api.client, headers)['ticket']}"
    elif case == "another token":
        url += _ticket(api.client, api.headers(Role.OPERATOR))["ticket"]
    elif case == "no credentials":
        url += _ticket(api.client, headers)["ticket"]
        headers = {}
    refused = _refusal(api.client, url, headers)
    assert refused.status_code in (401, 403)
    assert says in refused.json()["detail"]
    assert refused.headers["content-type"] == "application/problem+json"
    assert len(_denied_entries(api)) == before + 1


def test_an_expired_ticket_is_refused(api: Api) -> None:
    tickets = api.services.console_tickets
    ticket = _ticket(api.client, api.headers())
    real_clock = tickets._clock
    tickets._clock = lambda: real_clock() + TICKET_TTL_S + 1  # 31 s later
    try:
        refused = _refusal(api.client, ticket["url"], api.headers())
    finally:
        tickets._clock = real_clock
    assert refused.status_code == 403 and "expired" in refused.json()["detail"]


def test_a_browser_ticket_is_bound_to_its_origin_and_session(
    api: Api, browser: tuple[TestClient, dict[str, str]]
) -> None:
    client, headers = browser
    ticket = _ticket(client, headers)
    # Another site's page holding the ticket (CVE-2015-0259: no Origin check in Nova).
    evil = _refusal(client, ticket["url"], {"Origin": "https://evil.example"})
    assert evil.status_code == 403 and "origin" in evil.json()["detail"]
    # The same user's other browser session: not the one the ticket was issued to.
    other = TestClient(api.client.app)
    log_in(other)
    ticket = _ticket(client, headers)
    stolen = _refusal(other, ticket["url"], {"Origin": ORIGIN})
    assert stolen.status_code == 403 and "another session" in stolen.json()["detail"]
    # A page-less client (no Origin) cannot use a ticket a page asked for.
    ticket = _ticket(client, headers)
    no_origin = _refusal(client, ticket["url"], {})
    assert no_origin.status_code == 403 and "origin" in no_origin.json()["detail"]
    # And the page itself gets through.
    ticket = _ticket(client, headers)
    assert "screen (VNC)" in _gets_through(client, ticket["url"], {"Origin": ORIGIN})


def test_a_ticket_needs_the_csrf_token_from_a_page(
    browser: tuple[TestClient, dict[str, str]],
) -> None:
    client, _ = browser
    answer = client.post(f"/api/v1/vms/{VM}/console/ticket", json={"kind": "vnc"})
    assert answer.status_code == 403 and "CSRF" in answer.json()["detail"]


def test_viewers_get_view_only_tickets(api: Api) -> None:
    ticket = _ticket(api.client, api.headers(Role.VIEWER))
    assert ticket["view_only"] is True
    operator = _ticket(api.client, api.headers(Role.OPERATOR))
    assert operator["view_only"] is False


def test_no_ticket_for_a_vm_that_is_not_running(api: Api) -> None:
    answer = api.client.post(
        "/api/v1/vms/nope/console/ticket", json={"kind": "vnc"}, headers=api.headers()
    )
    assert answer.status_code == 404


def test_tickets_are_secret_and_single_use_by_construction(api: Api) -> None:
    unused = asyncio.run(api.services.console_tickets.unused("admin"))
    room = api.services.settings.console_max_tickets_per_user - unused  # the cap, not luck
    assert room >= 3
    secrets = {_ticket(api.client, api.headers())["ticket"] for _ in range(room)}
    assert len(secrets) == room
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", s) for s in secrets)  # 256 bits
