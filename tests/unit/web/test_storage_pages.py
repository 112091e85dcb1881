"""The storage domain pages on libvirt's test driver: the list, the built-in local domain's
page (each host's reach, its volumes), the create form (per kind, the API's messages) and the
refusals, in the page's words and audited like the API."""

from __future__ import annotations

import html
from typing import Any

from fastapi.testclient import TestClient
from markupsafe import escape

from corral.model.auth import Role
from tests.unit.web.conftest import Api, log_in

HTMX = {"HX-Request": "true"}


def _post(
    browser: TestClient, csrf: str, url: str, status: int = 200, data: dict[str, str] | None = None
) -> str:
    answer = browser.post(url, data=data or {}, headers={"X-CSRF-Token": csrf, **HTMX})
    assert answer.status_code == status, answer.text
    return answer.text


def _api_messages(api: Api, body: dict[str, Any]) -> list[str]:
    answer = api.client.post("/api/v1/storage-domains", json=body, headers=api.headers())
    assert answer.status_code == 422, answer.text
    return [e["msg"] for e in answer.json()["errors"]]


def test_the_list_and_the_local_domains_page(api: Api, browser: TestClient) -> None:
    log_in(browser, "viewer")
    listed = browser.get("/storage-domains")
    assert listed.status_code == 200, listed.text
    assert 'href="/storage-domains"' in listed.text and 'href="/networks"' in listed.text
    assert 'data-domain="local"' in listed.text and "1 of 1" in listed.text
    assert 'data-testid="storage-domain-form"' not in listed.text  # admins only
    page = browser.get("/storage-domains/local").text
    assert 'data-host="test"' in page and ">reachable<" in page
    assert 'data-testid="sd-volumes"' not in page and 'data-testid="sd-check"' not in page


def test_the_create_form_shows_each_kinds_fields_and_the_apis_messages(
    api: Api, browser: TestClient
) -> None:
    csrf = log_in(browser, "admin")
    page = browser.get("/storage-domains").text
    assert 'name="path"' in page and 'name="server"' not in page
    nfs = browser.get("/ui/fragments/storage-domain-form?kind=nfs&name=keep", headers=HTMX).text
    assert 'name="server"' in nfs and 'name="export"' in nfs and 'value="keep"' in nfs
    iscsi = browser.get("/ui/fragments/storage-domain-form?kind=iscsi", headers=HTMX).text
    assert 'name="portal"' in iscsi and 'name="target"' in iscsi
    bad = {"kind": "shared-dir", "name": "sd-rel", "path": "relative/dir"}
    refused = _post(browser, csrf, "/ui/storage-domains", 422, bad)
    assert 'data-testid="error-path"' in refused
    for message in _api_messages(api, bad):
        assert str(escape(message)) in refused
    bad_iqn = {"kind": "iscsi", "name": "sd-iqn", "portal": "san", "target": "not-an-iqn"}
    refused = _post(browser, csrf, "/ui/storage-domains", 422, bad_iqn)
    assert 'data-testid="error-target"' in refused
    for message in _api_messages(api, bad_iqn):
        assert str(escape(message)) in refused
    # The test driver streams no volume: no host can hold the marker, none reaches it.
    nowhere_dir = {"kind": "shared-dir", "name": "sd-nowhere", "path": "/srv/nowhere"}
    nowhere = _post(browser, csrf, "/ui/storage-domains", 422, nowhere_dir)
    assert 'data-testid="form-error"' in nowhere
    assert "no host reaches storage domain sd-nowhere" in nowhere and "host test:" in nowhere
    audit = api.client.get(
        "/api/v1/audit", params={"action": "storage_domain.create"}, headers=api.headers()
    ).json()["items"]
    entry = next(e for e in audit if e["target"] == "sd-nowhere")
    assert entry["user"] == "admin" and "no host reaches" in entry["outcome"]


def test_local_volumes_checks_and_refusals_through_the_page(api: Api, browser: TestClient) -> None:
    csrf = log_in(browser, "admin")
    page = browser.get("/storage-domains/local").text
    assert 'data-testid="volume-create"' in page and 'data-testid="sd-delete"' not in page
    volumes = "/ui/storage-domains/local/volumes"
    made = _post(
        browser, csrf, volumes, 200, {"volume": "uivol", "size_gib": "0.5", "host": "test"}
    )
    assert 'data-volume="uivol"' in made and "created volume uivol" in made
    wrong = _post(browser, csrf, volumes, 422, {"volume": "uivol2", "size_gib": "½"})
    assert 'data-testid="volume-error"' in wrong and "give a number of GiB" in wrong
    huge = _post(browser, csrf, volumes, 409, {"volume": "uivol3", "size_gib": "65536"})
    assert "storage domain local has" in huge and "needs" in huge
    # (Growing is the e2e test's: the test driver resizes nothing.)
    assert 'data-testid="volume-resize"' in made
    shrink = _post(browser, csrf, f"{volumes}/uivol/resize", 409, {"size_gib": "0.25"})
    assert "volumes only grow" in shrink
    checked = _post(browser, csrf, "/ui/storage-domains/local/check")
    assert "checked: 1 of 1 hosts reach local" in checked
    gone = _post(browser, csrf, f"{volumes}/uivol/delete", 200, {"host": "test"})
    assert 'data-volume="uivol"' not in gone and "deleted volume uivol" in gone
    refused = _post(browser, csrf, "/ui/storage-domains/local/delete", 409)
    assert "cannot be deleted" in refused
    audit = api.client.get(
        "/api/v1/audit", params={"action": "storage_domain.volume.create"}, headers=api.headers()
    ).json()["items"]
    assert any(e["target"] == "local/uivol" and e["outcome"] == "ok" for e in audit)


def test_operators_change_no_storage_domain(api: Api) -> None:
    operator = TestClient(api.client.app)
    csrf = log_in(operator, "operator")
    answer = operator.post(
        "/ui/storage-domains/local/check", headers={"X-CSRF-Token": csrf, **HTMX}
    )
    assert answer.status_code == 403, answer.text


def test_the_vm_page_shows_each_disks_domain_and_moves_them(api: Api, browser: TestClient) -> None:
    body = {"name": "uidisks", "memory_mib": 64, "disks": [{"name": "data", "size_gib": 1}],
            "nics": []}  # fmt: skip
    made = api.client.post("/api/v1/vms", json=body, headers=api.headers())
    assert made.status_code == 201, made.text
    csrf = log_in(browser, "operator")
    page = browser.get("/vms/uidisks").text
    assert 'data-testid="disk-domain"><a href="/storage-domains/local">local</a>' in page
    # local is the only domain its host reaches: nowhere to move to.
    assert 'data-testid="disk-move"' not in page
    move = "/ui/vms/uidisks/disks/vda/move"
    already = _post(browser, csrf, move, 409, {"to": "local"})
    assert "is on storage domain local already" in html.unescape(already)
    unknown = _post(browser, csrf, move, 404, {"to": "nowhere"})
    assert "nowhere" in unknown
    bad = _post(browser, csrf, move, 422, {"to": "no such"})
    assert "to:" in bad
    slow = _post(browser, csrf, move, 422, {"to": "local", "bandwidth_mib_s": "fast"})
    assert "bandwidth_mib_s: give a whole number" in slow
    zero = _post(browser, csrf, move, 422, {"to": "local", "bandwidth_mib_s": "0"})
    assert "bandwidth_mib_s:" in zero and "greater than or equal to 1" in zero
    audit = api.client.get(
        "/api/v1/audit", params={"action": "vm.disk.move"}, headers=api.headers()
    ).json()["items"]
    assert any(e["target"] == "uidisks/vda" and e["user"] == "operator" for e in audit)


def test_the_create_form_puts_the_disk_on_a_domain(api: Api, browser: TestClient) -> None:
    csrf = log_in(browser, "operator")
    form = browser.get("/vms/new").text
    assert 'name="disk_domain"' in form and '<option value="local" selected>local</option>' in form
    base = {"name": "uidomvm", "disk_source": "blank", "disk_size_gib": "1", "network": "none",
            "boot_source": "disk", "memory_mib": "64", "vcpus": "1"}  # fmt: skip
    refused = _post(browser, csrf, "/ui/vms", 422, {**base, "disk_domain": "sd-none"})
    api_refused = api.client.post(
        "/api/v1/vms",
        json={
            "name": "uidomvm",
            "memory_mib": 64,
            "nics": [],
            "disks": [{"name": "root", "size_gib": 1, "domain": "sd-none"}],
        },
        headers=api.headers(Role.OPERATOR),
    )
    assert api_refused.status_code >= 400
    assert 'data-testid="form-error"' in refused
    assert html.unescape(refused).count(api_refused.json()["detail"]) == 1
    made = browser.post(
        "/ui/vms", data={**base, "disk_domain": "local"}, headers={"X-CSRF-Token": csrf, **HTMX}
    )
    assert made.status_code == 200 and made.headers["hx-redirect"] == "/vms/uidomvm", made.text


def test_the_create_form_takes_an_existing_volume_as_the_disk(
    api: Api, browser: TestClient
) -> None:
    made = api.client.post(
        "/api/v1/storage-domains/local/volumes",
        json={"name": "uivol-data", "size_gib": 0.25, "host": "test"},
        headers=api.headers(),
    )
    assert made.status_code == 201, made.text
    csrf = log_in(browser, "operator")
    assert '<option value="volume"' in browser.get("/vms/new").text
    base = {"name": "uivolvm", "disk_source": "volume", "disk_domain": "local", "network": "none",
            "boot_source": "disk", "memory_mib": "64", "vcpus": "1"}  # fmt: skip
    refused = _post(browser, csrf, "/ui/vms", 422, {**base, "disk_image": "uivol-nope"})
    assert "no volume &#39;uivol-nope&#39; in Corral&#39;s pool" in refused
    taken = browser.post(
        "/ui/vms", data={**base, "disk_image": "uivol-data"}, headers={"X-CSRF-Token": csrf, **HTMX}
    )
    assert taken.status_code == 200 and taken.headers["hx-redirect"] == "/vms/uivolvm", taken.text
    vm = api.client.get("/api/v1/vms/uivolvm", headers=api.headers()).json()
    assert [d["path"] for d in vm["disks"] if d["device"] == "disk"] == [made.json()["path"]]
    api.client.delete("/api/v1/vms/uivolvm", params={"delete_disks": "true"}, headers=api.headers())
