"""The network pages on libvirt's test driver: the list, a page per network with its state on
each host and its tasks, the create form (per kind, the API's messages), edit, check, delete and
the refusals, audited like the API."""

from __future__ import annotations

import time
from html import unescape as html_unescape
from typing import Any

from fastapi.testclient import TestClient
from markupsafe import escape

from tests.unit.web.conftest import Api, log_in

HTMX = {"HX-Request": "true"}


def _post(
    browser: TestClient,
    csrf: str,
    url: str,
    status: int = 200,
    data: dict[str, str] | None = None,
) -> Any:
    answer = browser.post(url, data=data or {}, headers={"X-CSRF-Token": csrf, **HTMX})
    assert answer.status_code == status, answer.text
    return answer


def _settled(api: Api, name: str, timeout: float = 30) -> dict[str, Any]:
    """The network once no task on it is queued or running."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = api.client.get("/api/v1/tasks", headers=api.headers()).json()["items"]
        if not any(t["target"] == name and t["state"] in ("pending", "running") for t in tasks):
            shown: dict[str, Any] = api.client.get(
                f"/api/v1/networks/{name}", headers=api.headers()
            ).json()
            return shown
        time.sleep(0.05)
    raise AssertionError(f"the tasks of network {name} did not end within {timeout} s")


def _api_messages(api: Api, body: dict[str, Any]) -> list[str]:
    answer = api.client.post("/api/v1/networks", json=body, headers=api.headers())
    assert answer.status_code == 422, answer.text
    return [str(e["msg"]) for e in answer.json()["errors"]]


def test_a_network_made_through_the_pages_shows_its_state_per_host(
    api: Api, live_browser: TestClient
) -> None:
    csrf = log_in(live_browser, "admin")
    listed = live_browser.get("/networks").text
    assert 'data-testid="network-form"' in listed and 'name="uplink"' not in listed
    body = {"name": "uinet", "kind": "nat", "description": "lab", "required": "1"}
    made = _post(live_browser, csrf, "/ui/networks", 200, body)
    assert made.headers["hx-redirect"] == "/networks/uinet"
    assert [(h["host"], h["state"]) for h in _settled(api, "uinet")["hosts"]] == [
        ("test", "applied")
    ]
    page = live_browser.get("/networks/uinet").text
    assert 'data-host="test"' in page and 'data-testid="net-state">applied<' in page
    assert "network.create" in page and "required" in page
    listed = live_browser.get("/ui/fragments/networks", headers=HTMX).text
    assert 'data-network="uinet"' in listed and "1 applied" in listed
    edited = _post(
        live_browser, csrf, "/ui/networks/uinet/edit", 200, {"description": "lab 2"}
    ).text
    assert "applying to every host" in edited and "network.edit" in edited
    shown = _settled(api, "uinet")
    assert shown["description"] == "lab 2" and shown["required"] is False
    again = _post(live_browser, csrf, "/ui/networks/uinet/apply").text
    assert "applying to every host again" in again and "network.apply" in again
    assert [h["state"] for h in _settled(api, "uinet")["hosts"]] == ["applied"]
    checked = _post(live_browser, csrf, "/ui/network-checks", 200, {"network": "uinet"}).text
    assert "checked every connected host" in checked and "<h1>uinet</h1>" in checked
    gone = _post(live_browser, csrf, "/ui/networks/uinet/delete", 204)
    assert gone.headers["hx-redirect"] == "/networks"
    _settled(api, "uinet-absent")
    assert api.client.get("/api/v1/networks/uinet", headers=api.headers()).status_code == 404
    audit = api.client.get(
        "/api/v1/audit", params={"action": "network.edit"}, headers=api.headers()
    ).json()["items"]
    assert any(e["target"] == "uinet" and e["user"] == "admin" for e in audit)


def test_the_create_form_per_kind_and_its_refusals(api: Api, live_browser: TestClient) -> None:
    csrf = log_in(live_browser, "admin")
    bridge = live_browser.get(
        "/ui/fragments/network-form?kind=bridge&name=keep&required=1", headers=HTMX
    ).text
    assert 'name="uplink"' in bridge and 'name="vlan"' in bridge and 'value="keep"' in bridge
    assert "checked" in bridge
    vxlan = live_browser.get("/ui/fragments/network-form?kind=vxlan", headers=HTMX).text
    assert 'name="vni"' in vxlan and 'name="uplink"' not in vxlan
    form = "/ui/networks"
    letters = _post(
        live_browser, csrf, form, 422, {"name": "uivx", "kind": "vxlan", "vni": "x1"}
    ).text
    assert 'data-testid="error-vni"' in letters and "whole number" in letters
    zero = _post(live_browser, csrf, form, 422, {"name": "uivx", "kind": "vxlan", "vni": "0"}).text
    for message in _api_messages(api, {"name": "uivx", "kind": "vxlan", "vni": 0}):
        assert str(escape(message)) in zero
    reserved = _post(live_browser, csrf, form, 422, {"name": "nat", "kind": "nat"}).text
    assert 'data-testid="form-error"' in reserved and "is reserved" in reserved
    nolabel = {"name": "uibr", "kind": "bridge", "uplink": "nosuchlabel"}
    refused = _post(live_browser, csrf, form, 422, nolabel).text
    assert 'data-testid="form-error"' in refused
    assert "no host has a NIC labelled &#39;nosuchlabel&#39;" in refused
    assert api.client.get("/api/v1/networks/uibr", headers=api.headers()).status_code == 404


def test_a_network_in_use_is_not_deleted_and_the_page_says_why(
    api: Api, live_browser: TestClient
) -> None:
    csrf = log_in(live_browser, "admin")
    _post(live_browser, csrf, "/ui/networks", 200, {"name": "uiused", "kind": "isolated"})
    _settled(api, "uiused")
    vm = {"name": "uinetvm", "memory_mib": 64, "disks": [{"size_gib": 1}],
          "nics": [{"network": "uiused"}]}  # fmt: skip
    created = api.client.post("/api/v1/vms", json=vm, headers=api.headers())
    assert created.status_code == 201, created.text
    refused = _post(live_browser, csrf, "/ui/networks/uiused/delete", 409).text
    assert "used by the NICs of VM(s) uinetvm" in refused
    viewer = TestClient(api.client.app)
    log_in(viewer, "viewer")
    seen = viewer.get("/networks/uiused").text
    assert 'data-testid="net-delete"' not in seen and 'data-testid="network-edit"' not in seen
    vm_page = viewer.get("/vms/uinetvm").text
    assert 'href="/networks/uiused"' in vm_page
    assert '<option value="uiused" >uiused (cluster network)' in live_browser.get("/vms/new").text


def test_host_nics_are_labelled_and_unlabelled_through_the_page(
    api: Api, live_browser: TestClient
) -> None:
    csrf = log_in(live_browser, "admin")
    page = live_browser.get("/networks").text
    assert 'data-testid="host-nics" data-host="test"' in page and 'data-nic="eth1"' in page
    labelled = _post(
        live_browser, csrf, "/ui/hosts/test/nic-labels", 200, {"nic": "eth1", "label": "uilan"}
    ).text
    assert "labelled eth1 on host test" in labelled and 'data-label="uilan"' in labelled
    nics = api.client.get("/api/v1/hosts/test/nics", headers=api.headers()).json()["items"]
    assert nics[0]["labels"] == ["uilan"]
    bad = _post(
        live_browser, csrf, "/ui/hosts/test/nic-labels", 422, {"nic": "eth1", "label": "Bad Lan"}
    ).text
    api_bad = api.client.put("/api/v1/hosts/test/nics/eth1/labels/Bad%20Lan", headers=api.headers())
    assert api_bad.status_code == 422
    assert html_unescape(bad) == "label: " + api_bad.json()["errors"][0]["msg"]
    missing = _post(
        live_browser, csrf, "/ui/hosts/test/nic-labels", 404, {"nic": "eth9", "label": "uilan"}
    ).text
    assert "host test has no NIC &#x27;eth9&#x27;" in missing
    gone = _post(live_browser, csrf, "/ui/hosts/test/nics/eth1/labels/uilan/delete").text
    assert 'data-label="uilan"' not in gone and "took label" in gone
    audit = api.client.get(
        "/api/v1/audit", params={"action": "host.nic.label"}, headers=api.headers()
    ).json()["items"]
    assert any(e["target"] == "test/eth1/uilan" and e["outcome"] == "ok" for e in audit)
