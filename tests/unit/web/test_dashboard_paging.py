"""The dashboard shows the VMs' counts and pages its table (never every VM at once)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from corral.web.pages import dashboard
from tests.unit.web.conftest import Api, log_in

_ROW = re.compile(r'<tr data-vm="([^"]+)">')
_NEXT = re.compile(r'href="/\?cursor=([A-Za-z0-9_-]+)" data-testid="vm-next-page"')


def test_counts_and_pages_of_the_vm_table(
    api: Api, browser: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [f"dash-{i}" for i in range(3)]
    for name in names:
        spec = {"name": name, "disks": [{"size_gib": 1}], "nics": []}
        assert api.client.post("/api/v1/vms", json=spec, headers=api.headers()).status_code == 201
    monkeypatch.setattr(dashboard, "PAGE_SIZE", 2)
    log_in(browser, "viewer")
    summary = api.client.get("/api/v1/vms/summary", headers=api.headers()).json()
    page = browser.get("/").text
    assert f'<span data-testid="vm-total">{summary["total"]}</span>' in page
    for state, count in summary["by_state"].items():
        assert f'data-testid="vm-count-{state}">{count} {state}</span>' in page
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        listed = browser.get("/", params={"cursor": cursor} if cursor else {}).text
        rows = _ROW.findall(listed)
        assert 1 <= len(rows) <= 2
        seen += rows
        # The live fragment re-fetches the same page, not the first.
        if cursor:
            assert f'hx-get="/ui/fragments/vms?cursor={cursor}"' in listed
            fragment = browser.get("/ui/fragments/vms", params={"cursor": cursor}).text
            assert _ROW.findall(fragment) == rows
        found = _NEXT.search(listed)
        if found is None:
            break
        cursor = found.group(1)
    assert seen == sorted(seen) and len(seen) == summary["total"]
    assert set(names) <= set(seen)
    assert browser.get("/", params={"cursor": "bogus"}).status_code == 422
