"""The backups page in a real browser: a VM backed up through its form appears in its store
with its kind and sizes; a restore of a backup that does not exist is refused in the API's
words and makes nothing."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import KernelGuest
from corral.testbed.vm_specs import kernel_vm
from tests.e2e.conftest import log_in, new_context, save

pytestmark = pytest.mark.integration

SUFFIX = secrets.token_hex(2)
VM = f"e2e-bk-{SUFFIX}"
STORE = f"e2e-store-{SUFFIX}"


@pytest.fixture(scope="module")
def api(corral: CorralServer) -> Iterator[httpx.Client]:
    with corral.client() as client:
        yield client


@pytest.fixture(scope="module")
def admin(browser: Browser, corral: CorralServer) -> Iterator[BrowserContext]:
    context = new_context(browser, corral)
    page = context.new_page()
    log_in(page, "admin", corral.admin_password)
    page.close()
    yield context
    context.close()


def test_a_vm_is_backed_up_through_the_page(
    admin: BrowserContext, api: httpx.Client, kernel_guest: KernelGuest, tmp_path: Path
) -> None:
    made = api.post("/backup-stores", json={"name": STORE, "path": str(tmp_path / "store")})
    assert made.status_code == 201, made.text
    assert api.post("/vms", json=kernel_vm(VM, kernel_guest)).status_code == 201
    page = admin.new_page()
    try:
        page.goto("/backups")
        expect(page.locator(f"section[data-store='{STORE}']")).to_contain_text("No backup yet")
        page.fill("[data-testid=backup-vm]", VM)
        page.select_option("[data-testid=backup-store]", STORE)
        page.click("[data-testid=backup-submit]")
        expect(page.locator("[data-testid=backup-notice]")).to_contain_text(f"backing up VM {VM}")
        wait_until(lambda: api.get(f"/vms/{VM}/backups").json() or None, 120, "the backup")
        page.goto("/backups")
        row = page.locator(f"section[data-store='{STORE}'] tr[data-vm='{VM}']")
        expect(row).to_contain_text("full")
        expect(row).to_contain_text("offline")  # it was shut off
        save(page, "backups")

        page.fill("[data-testid=restore-vm]", VM)
        page.fill("[data-testid=restore-backup]", "nope")
        page.fill("[data-testid=restore-name]", f"{VM}-r")
        page.click("[data-testid=restore-submit]")
        expect(page.locator("[data-testid=backup-error]")).to_contain_text("no backup 'nope'")
        assert api.get(f"/vms/{VM}-r").status_code == 404
    finally:
        page.close()
        api.delete(f"/vms/{VM}", params={"delete_disks": "true"})
        api.delete(f"/backup-stores/{STORE}")
