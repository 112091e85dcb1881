"""The web UI on libvirt's test:///default driver, through Starlette's TestClient."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.unit.api.conftest import PASSWORD, Api, api

__all__ = ["PASSWORD", "Api", "api", "browser", "csrf_of", "live_browser", "log_in"]

_CSRF = re.compile(r'name="csrf-token" content="([^"]*)"')
_LOGIN_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_of(page: str) -> str:
    found = _CSRF.search(page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def log_in(client: TestClient, user: str = "admin", password: str = PASSWORD) -> str:
    """Log in through the form like a browser; returns the session's CSRF token."""
    form = client.get("/login")
    token = _LOGIN_CSRF.search(form.text)
    assert token
    answer = client.post(
        "/login",
        data={"username": user, "password": password, "csrf_token": token.group(1), "next": "/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get("/").text)


@pytest.fixture
def browser(api: Api) -> TestClient:
    """A fresh cookie jar on the module's app (TestClient without a lifespan of its own)."""
    return TestClient(api.client.app, base_url="http://testserver")


@pytest.fixture
def live_browser(api: Api) -> TestClient:
    """A fresh cookie jar whose requests run on the module app's own event loop: tasks a page
    starts (applying a network) go on after the answer, as in the server. ``browser``'s
    requests each run on a loop of their own, which cancels such tasks when it ends."""
    client = TestClient(api.client.app, base_url="http://testserver")
    client.portal = api.client.portal
    return client
