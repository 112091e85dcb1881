"""The Images page, the VM page's CD-ROM section and the create form's CD-ROM options (test
driver; the drag-and-drop upload itself is exercised by the browser tests)."""

from __future__ import annotations

import libvirt
from fastapi.testclient import TestClient

from corral.model.auth import Role
from tests.unit.web.conftest import Api, log_in

MIB = 2**20


def _volume(name: str, fmt: str = "raw") -> str:
    conn = libvirt.open("test:///default")
    try:
        xml = (
            f"<volume><name>{name}</name><capacity unit='bytes'>{MIB}</capacity>"
            f"<target><format type='{fmt}'/></target></volume>"
        )
        return str(conn.storagePoolLookupByName("corral").createXML(xml, 0).path())
    finally:
        conn.close()


def _ui(browser: TestClient, csrf: str, path: str, **data: str) -> str:
    answer = browser.post(path, data=data, headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert answer.status_code == 200, answer.text
    return answer.text


def test_the_images_page_lists_uploads_and_deletes(api: Api, browser: TestClient) -> None:
    _volume("_iso.page.iso")
    csrf = log_in(browser, "operator")
    page = browser.get("/images")
    assert page.status_code == 200
    assert 'data-image="page.iso"' in page.text and 'data-domain="local"' in page.text
    assert 'data-testid="upload-form"' in page.text and "/static/images.js" in page.text
    assert 'id="upload-domain"' in page.text and '<option value="local">' in page.text
    fragment = _ui(browser, csrf, "/ui/images/page.iso/delete", host="test", domain="local")
    assert "deleted image page.iso" in fragment and 'data-image="page.iso"' not in fragment
    viewer = TestClient(api.client.app)
    log_in(viewer, "viewer")
    seen = viewer.get("/images").text
    assert "upload-form" not in seen and "images.js" not in seen  # viewers only look


def test_the_vm_page_inserts_and_ejects(api: Api, browser: TestClient) -> None:
    iso = _volume("_iso.vmpage.iso")
    csrf = log_in(browser, "operator")
    created = api.client.post(
        "/api/v1/vms",
        json={"name": "uimedia", "disks": [{"size_gib": 1}]},
        headers=api.headers(Role.OPERATOR),
    )
    assert created.status_code == 201, created.text
    page = browser.get("/vms/uimedia").text
    assert 'data-testid="cdrom-none"' in page and "Inserting an image adds one" in page
    assert '<option value="vmpage.iso">' in page
    inserted = _ui(browser, csrf, "/ui/vms/uimedia/cdrom", image="vmpage.iso")
    assert 'data-testid="cdrom-media">vmpage.iso</strong>' in inserted
    assert 'data-testid="cdrom-eject"' in inserted and "hx-confirm=" in inserted
    vm = api.client.get("/api/v1/vms/uimedia", headers=api.headers()).json()
    assert [d["path"] for d in vm["disks"] if d["device"] == "cdrom"] == [iso]
    ejected = _ui(browser, csrf, "/ui/vms/uimedia/cdrom", eject="1")
    assert 'data-testid="cdrom-media">empty</strong>' in ejected
    refused = browser.post(
        "/ui/vms/uimedia/cdrom",
        data={"image": "nope.iso"},
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )
    assert refused.status_code == 404 and "no image named" in refused.text
    audit = api.client.get("/api/v1/audit?action=vm.cdrom", headers=api.headers()).json()["items"]
    assert {e["user"] for e in audit if e["target"] == "uimedia"} == {"operator"}


def test_the_create_form_offers_images_and_an_empty_drive(api: Api, browser: TestClient) -> None:
    _volume("_iso.form.iso")
    csrf = log_in(browser, "operator")
    form = browser.get("/vms/new").text
    assert '<option value="form.iso">' in form and 'name="cdrom_drive"' in form
    answer = browser.post(
        "/ui/vms",
        data={"name": "uidrive", "disk_source": "blank", "disk_size_gib": "1",
              "boot_source": "disk", "network": "none", "cdrom_drive": "1"},
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.headers["hx-redirect"] == "/vms/uidrive"
    vm = api.client.get("/api/v1/vms/uidrive", headers=api.headers()).json()
    assert [(d["device"], d["path"]) for d in vm["disks"]][-1] == ("cdrom", "")
