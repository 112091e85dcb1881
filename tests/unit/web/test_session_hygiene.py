"""Issue 13's small ones: the login's user name checked like every name, form numbers parsed
strictly, nothing cached, and the UI's own refreshes not counted as a person's activity."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from corral.store.coltypes import utcnow
from corral.store.tables import WebSession
from tests.unit.web.conftest import PASSWORD, Api, log_in


def _audit(api: Api, action: str) -> list[dict[str, str]]:
    answer = api.client.get(f"/api/v1/audit?action={action}&limit=500", headers=api.headers())
    entries: list[dict[str, str]] = answer.json()["items"]
    return entries


@pytest.mark.parametrize(
    "username", ["admin\nINFO forged line", "adm\x00in", "admin\x1b[2J", "ad min", "admin\u202e"]
)
def test_login_refuses_user_names_no_user_can_have(
    api: Api, browser: TestClient, username: str, caplog: pytest.LogCaptureFixture
) -> None:
    browser.get("/login")
    token = browser.cookies["corral_login_csrf"]
    answer = browser.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": token}
    )
    assert answer.status_code == 422
    assert "user name: must be 1-63 characters" in answer.text
    assert "corral_session" not in browser.cookies
    assert "forged line" not in caplog.text and "\x00" not in caplog.text
    for entry in _audit(api, "ui.auth.login"):
        assert entry["user"].isprintable() and "\x00" not in repr(entry)


def test_the_audit_log_escapes_control_characters(api: Api) -> None:
    assert api.client.portal is not None
    api.client.portal.call(
        api.services.audit.record, "u\nser", "test.escape", "t\x00arget", "error: a\nb", "d\x1b"
    )
    (entry,) = _audit(api, "test.escape")
    assert (entry["user"], entry["target"]) == ("u\\nser", "t\\x00arget")
    assert (entry["outcome"], entry["detail"]) == ("error: a\\nb", "d\\x1b")


@pytest.mark.parametrize("days", ["²", "٣", "1.5", "-1", "+3", "1_0", "x"])
def test_token_days_accept_ascii_digits_only(browser: TestClient, days: str) -> None:
    csrf = log_in(browser)
    answer = browser.post(
        "/ui/tokens",
        data={"name": "strict", "expires_in_days": days},
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )
    assert answer.status_code == 422, answer.text
    assert "whole number of days" in answer.text
    listed = browser.get("/tokens").text
    assert ">strict<" not in listed


def test_token_days_as_digits_work(browser: TestClient) -> None:
    csrf = log_in(browser)
    answer = browser.post(
        "/ui/tokens",
        data={"name": "thirty", "expires_in_days": "30"},
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )
    assert answer.status_code == 200, answer.text
    assert "crl_" in answer.text  # the secret, shown once …
    assert answer.headers["cache-control"] == "no-store"  # … and never cached


def test_nothing_but_static_assets_may_be_cached(api: Api, browser: TestClient) -> None:
    for path in ("/login", "/healthz", "/openapi.json"):
        assert browser.get(path).headers["cache-control"] == "no-store", path
    log_in(browser)
    for path in ("/", "/tokens", "/vms/test", "/ui/fragments/vms", "/api/v1/vms"):
        answer = browser.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["cache-control"] == "no-store", path
    refused = api.client.get("/api/v1/vms")
    assert refused.status_code == 401 and refused.headers["cache-control"] == "no-store"
    asset = browser.get("/static/app.js")
    assert asset.status_code == 200 and "no-store" not in asset.headers.get("cache-control", "")


def _last_seen(api: Api) -> timedelta:
    """How long ago the newest session was last used."""
    with api.services.store.session() as s:
        row = s.scalars(select(WebSession).order_by(WebSession.created_at.desc())).first()
        assert row is not None
        return utcnow() - row.last_seen_at


def _age_sessions(api: Api, by: timedelta) -> None:
    with api.services.store.session() as s:
        for row in s.scalars(select(WebSession)):
            row.last_seen_at -= by
            row.created_at -= by


def test_background_refreshes_do_not_extend_the_idle_timeout(api: Api, browser: TestClient) -> None:
    log_in(browser)
    idle = api.services.auth.session_policy.idle
    _age_sessions(api, idle - timedelta(minutes=1))
    background = {"X-Corral-Background": "1", "HX-Request": "true"}
    for path in ("/ui/fragments/vms/test/log", "/ui/fragments/vms"):
        assert browser.get(path, headers=background).status_code == 200
    assert _last_seen(api) > idle - timedelta(minutes=2)  # not touched
    assert browser.get("/api/v1/vms", headers=background).status_code == 200
    assert _last_seen(api) > idle - timedelta(minutes=2)
    _age_sessions(api, timedelta(minutes=2))  # now past the idle timeout
    ended = browser.get("/ui/fragments/vms", headers=background)
    assert ended.status_code == 401


def test_a_persons_request_extends_the_idle_timeout(api: Api, browser: TestClient) -> None:
    log_in(browser)
    idle = api.services.auth.session_policy.idle
    _age_sessions(api, idle - timedelta(minutes=1))
    assert browser.get("/ui/fragments/vms", headers={"HX-Request": "true"}).status_code == 200
    assert _last_seen(api) < timedelta(seconds=30)
    _age_sessions(api, timedelta(minutes=2))
    assert browser.get("/").status_code == 200  # idle time counts from the last request


def test_the_log_poll_is_marked_as_background(browser: TestClient) -> None:
    log_in(browser)
    page = browser.get("/vms/test").text
    poll = next(line for line in page.splitlines() if "/log" in line and "every" in line)
    assert "data-background" in poll
    script = browser.get("/static/app.js").text
    assert 'headers["X-Corral-Background"] = "1"' in script


def _post(browser: TestClient, csrf: str, path: str, **data: str) -> tuple[int, str]:
    answer = browser.post(path, data=data, headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    return answer.status_code, answer.text


@pytest.mark.parametrize("typed", ["²", "٣", "+3", " 1_024", "1e3", "0x10", "-1"])
def test_the_create_forms_numbers_are_ascii_digits(
    api: Api, browser: TestClient, typed: str
) -> None:
    csrf = log_in(browser, "operator")
    base = {"name": "strictnum", "vcpus": "1", "memory_mib": "64", "disk_source": "blank",
            "disk_size_gib": "1", "boot_source": "disk", "network": "none"}  # fmt: skip
    fields = {"vcpus": "vcpus", "memory_mib": "memory_mib",
              "disk_size_gib": "disks.0.size_gib", "sockets": "cpu.topology.sockets"}  # fmt: skip
    for field, shown in fields.items():
        status, page = _post(browser, csrf, "/ui/vms", **{**base, field: typed})
        assert status == 422, (field, page)
        assert f'data-testid="error-{shown}"' in page, field
        assert "digits 0-9" in page
    listed = api.client.get("/api/v1/vms", headers=api.headers()).json()["items"]
    assert "strictnum" not in [vm["name"] for vm in listed]


def test_the_vm_pages_numbers_are_ascii_digits(browser: TestClient) -> None:
    csrf = log_in(browser, "operator")
    for path, data in [
        ("/ui/vms/test/edit", {"vcpus": "²"}),
        ("/ui/vms/test/edit", {"memory_mib": "1_024"}),
        ("/ui/vms/test/disks", {"disk": "extra", "size_gib": "\u0661"}),
    ]:
        status, text = _post(browser, csrf, path, **data)
        assert status == 422, (path, text)
        assert "digits 0-9" in text
    assert _post(browser, csrf, "/ui/vms/test/disks", disk="extra", size_gib="0.5x")[0] == 422
