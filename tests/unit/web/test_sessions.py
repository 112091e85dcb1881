"""Browser sessions: cookie flags, login and logout, CSRF and Origin checks, expiry."""

from __future__ import annotations

from fastapi.testclient import TestClient

from corral.model.auth import Role
from tests.unit.web.conftest import PASSWORD, Api, log_in


def test_pages_need_a_session(browser: TestClient) -> None:
    answer = browser.get("/vms/new", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/vms/new"
    htmx = browser.get("/ui/fragments/vms", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["hx-redirect"] == "/login"


def test_login_sets_a_strict_httponly_cookie(browser: TestClient) -> None:
    form = browser.get("/login")
    assert form.status_code == 200
    token = form.text.split('name="csrf_token" value="')[1].split('"')[0]
    answer = browser.post(
        "/login",
        data={"username": "admin", "password": PASSWORD, "csrf_token": token, "next": "/tasks"},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/tasks"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if "corral_session=" in c)
    flags = {f.strip().lower() for f in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    assert "secure" not in flags  # plain HTTP on loopback; HTTPS adds Secure
    assert browser.get("/").status_code == 200


def test_login_needs_the_forms_token(browser: TestClient) -> None:
    browser.get("/login")
    answer = browser.post(
        "/login", data={"username": "admin", "password": PASSWORD, "csrf_token": "forged"}
    )
    assert answer.status_code == 403
    assert "login form expired" in answer.text
    assert "corral_session" not in browser.cookies


def test_wrong_password_shows_the_form_again(browser: TestClient) -> None:
    browser.get("/login")
    token = browser.cookies["corral_login_csrf"]
    answer = browser.post(
        "/login", data={"username": "admin", "password": "nope", "csrf_token": token}
    )
    assert answer.status_code == 401
    assert "wrong user name or password" in answer.text


def test_open_redirects_are_refused(browser: TestClient) -> None:
    browser.get("/login")
    token = browser.cookies["corral_login_csrf"]
    answer = browser.post(
        "/login",
        data={
            "username": "admin",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.example/x",
        },
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/"


def test_changes_need_the_csrf_token(browser: TestClient) -> None:
    csrf = log_in(browser)
    without = browser.post("/ui/tokens", data={"name": "t1"})
    assert without.status_code == 403 and "CSRF" in without.text
    wrong = browser.post("/ui/tokens", data={"name": "t1"}, headers={"X-CSRF-Token": "x"})
    assert wrong.status_code == 403
    ok = browser.post("/ui/tokens", data={"name": "t1"}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200 and "crl_" in ok.text
    # The API with the session cookie: the same rule.
    api_without = browser.post("/api/v1/tokens", json={"name": "t2"})
    assert api_without.status_code == 403
    api_ok = browser.post("/api/v1/tokens", json={"name": "t2"}, headers={"X-CSRF-Token": csrf})
    assert api_ok.status_code == 201


def test_cross_site_origins_are_refused(browser: TestClient) -> None:
    csrf = log_in(browser)
    answer = browser.post(
        "/ui/tokens",
        data={"name": "t3"},
        headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
    )
    assert answer.status_code == 403 and "origin" in answer.text
    same = browser.post(
        "/ui/tokens",
        data={"name": "t3"},
        headers={"X-CSRF-Token": csrf, "Origin": "http://testserver"},
    )
    assert same.status_code == 200


def test_logout_ends_the_session_on_the_server(browser: TestClient) -> None:
    csrf = log_in(browser)
    secret = browser.cookies["corral_session"]
    out = browser.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    # Replaying the old cookie (as a thief would) no longer works.
    replay = TestClient(browser.app, cookies={"corral_session": secret})
    assert replay.get("/", follow_redirects=False).status_code == 303
    assert replay.get("/api/v1/vms").status_code == 401


def test_viewers_see_but_cannot_change(api: Api, browser: TestClient) -> None:
    csrf = log_in(browser, Role.VIEWER.value)
    assert browser.get("/").status_code == 200
    assert "New VM" not in browser.get("/").text
    refused = browser.post("/ui/vms/test/stop", headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 403
    assert browser.get("/users").status_code == 403


def test_pages_have_a_strict_content_security_policy(browser: TestClient) -> None:
    log_in(browser)
    for path in ("/", "/login", "/tasks", "/tokens", "/users", "/audit", "/vms/test"):
        page = browser.get(path)
        assert page.status_code == 200, path
        csp = dict(
            d.strip().split(" ", 1) for d in page.headers["content-security-policy"].split(";")
        )
        assert csp["script-src"] == "'self'" and "unsafe" not in csp["script-src"]
        assert csp["frame-ancestors"] == "'none'"
        assert "<script>" not in page.text and " on" + "click=" not in page.text
        assert page.headers["x-content-type-options"] == "nosniff"
