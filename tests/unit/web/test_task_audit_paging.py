"""The Tasks and Audit pages show a page at a time and link to the next (the API's
``next_cursor``), never only the newest page; the audit page's links keep its filters."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corral.model.auth import Role
from corral.services.principal import Principal
from corral.services.tasks import TaskContext
from corral.web.pages import admin
from tests.unit.web.conftest import Api, log_in

_TASK_ROW = re.compile(r'<tr data-task="([^"]+)">')
_TASK_NEXT = re.compile(r'href="/tasks\?cursor=([A-Za-z0-9_-]+)" data-testid="task-next-page"')
_AUDIT_ROW = re.compile(r"<tr><td>[^<]*</td><td>[^<]*</td><td>page\.test</td><td>([^<]*)</td>")
_AUDIT_NEXT = re.compile(r'href="([^"]+)" data-testid="audit-next-page"')


async def _nothing(_: TaskContext) -> dict[str, Any] | None:
    return None


def test_the_tasks_page_pages_through_every_task(
    api: Api, browser: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    who = Principal("admin", Role.ADMIN)

    async def make() -> None:
        for i in range(5):
            await api.services.tasks.run("page.test", f"tp-{i}", who, _nothing)

    assert api.client.portal is not None
    api.client.portal.call(make)
    every = [t["id"] for t in _all_tasks(api)]
    monkeypatch.setattr(admin, "PAGE_SIZE", 2)
    log_in(browser, "viewer")
    seen: list[str] = []
    cursor = None
    for _ in range(len(every)):
        listed = browser.get("/tasks", params={"cursor": cursor} if cursor else {}).text
        rows = _TASK_ROW.findall(listed)
        assert 1 <= len(rows) <= 2
        seen += rows
        if cursor:
            # The live fragment re-fetches the page shown, not the newest.
            assert f'hx-get="/ui/fragments/tasks?cursor={cursor}"' in listed
            assert 'href="/tasks" data-testid="task-first-page"' in listed
            fragment = browser.get("/ui/fragments/tasks", params={"cursor": cursor}).text
            assert _TASK_ROW.findall(fragment) == rows
        found = _TASK_NEXT.search(listed)
        if found is None:
            break
        cursor = found.group(1)
    assert seen == every  # newest first, each once, down to the oldest
    assert browser.get("/tasks", params={"cursor": "bogus"}).status_code == 422


def _all_tasks(api: Api) -> list[dict[str, Any]]:
    answer = api.client.get("/api/v1/tasks", params={"limit": 1000}, headers=api.headers())
    assert answer.status_code == 200 and answer.json()["next_cursor"] is None
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def test_the_audit_page_pages_with_its_filters(
    api: Api, browser: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def record() -> None:
        for i in range(5):
            await api.services.audit.record("auditee", "page.test", f"ap-{i}", "ok")
        await api.services.audit.record("auditee", "page.other", "ap-other", "ok")

    assert api.client.portal is not None
    api.client.portal.call(record)
    monkeypatch.setattr(admin, "PAGE_SIZE", 2)
    log_in(browser, "admin")
    seen: list[str] = []
    url = "/audit?user=auditee&action=page.test"
    for _ in range(5):
        listed = browser.get(url).text
        rows = _AUDIT_ROW.findall(listed)
        assert 1 <= len(rows) <= 2 and "ap-other" not in listed
        seen += rows
        found = _AUDIT_NEXT.search(listed)
        if found is None:
            break
        url = html.unescape(found.group(1))
        assert "user=auditee" in url and "action=page.test" in url
        first = browser.get(url).text
        assert 'href="/audit?user=auditee&amp;action=page.test" data-testid="audit-first-page"' in (
            first
        )
    assert seen == [f"ap-{i}" for i in reversed(range(5))]
    # A cursor of one filter's pages is no cursor of another's.
    other = browser.get(url.replace("action=page.test", "action=page.other"))
    assert other.status_code == 422, other.text
