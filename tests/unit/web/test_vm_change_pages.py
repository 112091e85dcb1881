"""The VM page's edit form and disk/NIC actions, and the create form's architecture and CPU
topology fields (test driver: changes to shut-off VMs go into their definition)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from corral.model.auth import Role
from tests.unit.web.conftest import Api, log_in


def _ui(browser: TestClient, csrf: str, path: str, status: int = 200, **data: str) -> str:
    answer = browser.post(path, data=data, headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert answer.status_code == status, answer.text
    return answer.text


def _vm(api: Api, name: str) -> dict[str, Any]:
    return dict(api.client.get(f"/api/v1/vms/{name}", headers=api.headers()).json())


def test_the_vm_page_edits_and_changes_devices(api: Api, browser: TestClient) -> None:
    created = api.client.post(
        "/api/v1/vms",
        json={"name": "uiedit", "memory_mib": 64, "disks": [{"size_gib": 1}], "nics": []},
        headers=api.headers(Role.OPERATOR),
    )
    assert created.status_code == 201, created.text
    csrf = log_in(browser, "operator")
    page = browser.get("/vms/uiedit").text
    for testid in ("edit-form", "disk-attach", "nic-attach", "vm-arch"):
        assert f'data-testid="{testid}"' in page
    edited = _ui(browser, csrf, "/ui/vms/uiedit/edit", vcpus="2", memory_mib="96",
                 description="resized")  # fmt: skip
    assert 'data-testid="change-notice"' in edited and "vCPUs 1 → 2" in edited
    assert "in its definition" in edited
    vm = _vm(api, "uiedit")
    assert (vm["vcpus"], vm["memory_mib"], vm["description"]) == (2, 96, "resized")
    added = _ui(browser, csrf, "/ui/vms/uiedit/disks", disk="logs", size_gib="1", bus="virtio")
    assert 'data-disk="vdb"' in added and "hx-confirm=" in added
    nic = _ui(browser, csrf, "/ui/vms/uiedit/nics", network="user", model="e1000")
    (mac,) = [n["mac"] for n in _vm(api, "uiedit")["nics"]]
    assert f'data-nic="{mac}"' in nic
    _ui(browser, csrf, f"/ui/vms/uiedit/nics/{mac}/detach")
    gone = _ui(browser, csrf, "/ui/vms/uiedit/disks/vdb/detach")
    assert 'data-disk="vdb"' not in gone and "disk logs (vdb) detached" in gone
    refused = _ui(browser, csrf, "/ui/vms/uiedit/edit", status=422, vcpus="0")
    assert "vcpus" in refused
    audit = api.client.get("/api/v1/audit?action=vm.edit", headers=api.headers()).json()["items"]
    entry = next(e for e in audit if e["target"] == "uiedit" and e["outcome"] == "ok")
    assert entry["user"] == "operator" and entry["detail"].startswith("offline: vCPUs 1 → 2")
    viewer = TestClient(api.client.app)
    log_in(viewer, "viewer")
    seen = viewer.get("/vms/uiedit").text
    assert 'data-testid="edit-form"' not in seen and 'data-testid="disk-attach"' not in seen


def test_the_create_form_takes_architecture_and_topology(api: Api, browser: TestClient) -> None:
    csrf = log_in(browser, "operator")
    form = browser.get("/vms/new").text
    assert '<option value="i686"' in form and 'name="sockets"' in form
    base = {"name": "uitopo", "vcpus": "4", "disk_source": "blank", "disk_size_gib": "1",
            "boot_source": "disk", "network": "none"}  # fmt: skip
    wrong = _ui(browser, csrf, "/ui/vms", status=422, **base, sockets="1", cores="2", threads="1")
    assert "equal 4" in wrong
    answer = browser.post(
        "/ui/vms",
        data={**base, "sockets": "2", "cores": "2", "threads": "1"},
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["hx-redirect"] == "/vms/uitopo"
    topology = _vm(api, "uitopo")["cpu"]["topology"]
    assert topology == {"sockets": 2, "cores": 2, "threads": 1}
    unknown = _ui(browser, csrf, "/ui/vms", status=422, **{**base, "name": "uiarch"},
                  arch="s390x")  # fmt: skip
    assert "cannot run s390x guests" in unknown and "qemu-system-misc" in unknown


def test_size_fields_name_their_unit(api: Api, browser: TestClient) -> None:
    """Form sizes are numbers in the unit of their label, as a bare number is everywhere:
    MiB for memory, GiB for disks; a refusal says which."""
    csrf = log_in(browser, "operator")
    new = browser.get("/vms/new").text
    assert "Memory (MiB)" in new and "Size (GiB" in new
    page = browser.get("/vms/test").text
    assert "Memory (MiB)" in page and 'aria-label="Size (GiB)"' in page
    form = {"name": "sized", "memory_mib": "2G", "disk_source": "blank", "disk_size_gib": "1",
            "boot_source": "disk", "network": "none"}  # fmt: skip
    refused = _ui(browser, csrf, "/ui/vms", status=422, **form)
    assert "give a whole number of MiB" in refused
    refused = _ui(browser, csrf, "/ui/vms/test/disks", status=422, disk="x", size_gib="10G")
    assert "give a number of GiB" in refused


def test_the_create_form_makes_a_vm_with_only_an_empty_cdrom_drive(
    api: Api, browser: TestClient
) -> None:
    csrf = log_in(browser, "operator")
    form = {"name": "uidrive", "memory_mib": "64", "disk_source": "none", "boot_source": "cdrom",
            "cdrom_drive": "1", "network": "nat"}  # fmt: skip
    answer = browser.post(
        "/ui/vms", data=form, headers={"X-CSRF-Token": csrf, "HX-Request": "true"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["hx-redirect"] == "/vms/uidrive"
    vm = _vm(api, "uidrive")
    assert [d["device"] for d in vm["disks"]] == ["cdrom"]
    assert [n["network"] for n in vm["nics"]] == ["corral-nat"]
