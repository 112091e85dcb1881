"""HA on the pages (test driver): the VM page's HA form switches HA on and off, refuses a VM
on local storage in words, and is not offered to viewers; the dashboard shows each host's HA
state."""

from __future__ import annotations

from fastapi.testclient import TestClient

from corral.model.auth import Role
from tests.unit.web.conftest import Api, log_in


def _post(browser: TestClient, csrf: str, path: str, **data: str) -> tuple[int, str]:
    answer = browser.post(path, data=data, headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    return answer.status_code, answer.text


def test_the_vm_page_switches_ha_and_says_why_not(api: Api, browser: TestClient) -> None:
    for name, spec in (
        ("uiha-cd", {"disks": [], "boot": {"source": "cdrom"}, "cdrom_drive": True}),
        ("uiha-local", {"disks": [{"size_gib": 1}]}),
    ):
        body = {"name": name, "memory_mib": 64, "nics": [], **spec}
        made = api.client.post("/api/v1/vms", json=body, headers=api.headers(Role.OPERATOR))
        assert made.status_code == 201, made.text
    csrf = log_in(browser, "operator")
    assert 'data-testid="ha-form"' in browser.get("/vms/uiha-cd").text
    status, page = _post(browser, csrf, "/ui/vms/uiha-cd/ha", enabled="1", priority="70")
    assert status == 200 and "high availability on, priority 70" in page, page
    vm = api.client.get("/api/v1/vms/uiha-cd", headers=api.headers()).json()
    assert vm["ha_priority"] == 70
    status, page = _post(browser, csrf, "/ui/vms/uiha-cd/ha", priority="70")
    assert status == 200 and "high availability off" in page
    status, page = _post(browser, csrf, "/ui/vms/uiha-local/ha", enabled="1", priority="x")
    assert status == 422 and "priority" in page
    status, page = _post(browser, csrf, "/ui/vms/uiha-local/ha", enabled="1", priority="50")
    assert status == 409 and "local storage" in page, page
    vm = api.client.get("/api/v1/vms/uiha-local", headers=api.headers()).json()
    assert vm["ha_priority"] is None
    viewer = TestClient(api.client.app)
    log_in(viewer, "viewer")
    assert 'data-testid="ha-form"' not in viewer.get("/vms/uiha-cd").text
    dashboard = browser.get("/").text
    assert "<th>HA</th>" in dashboard and 'class="ha-state"' in dashboard
