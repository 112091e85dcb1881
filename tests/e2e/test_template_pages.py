"""The templates page in a real browser: a template made through the page (an unknown VM
refused first) is listed with the VM standing on it; the new-VM form refuses a key that does
not parse and user-data cloud-init refuses (in their words, nothing made), then makes a linked
VM from the template."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_images import KernelGuest
from corral.testbed.vm_specs import kernel_vm
from tests.e2e.conftest import log_in, new_context, save

pytestmark = pytest.mark.integration

SUFFIX = secrets.token_hex(2)
SOURCE = f"e2e-tsrc-{SUFFIX}"
TEMPLATE = f"e2e-tpl-{SUFFIX}"
MADE = f"e2e-fromtpl-{SUFFIX}"


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


def _submit(page: Page, *, ssh_key: str = "", user_data: str = "") -> None:
    page.fill("[data-testid=template-vm-form] input[name=name]", MADE)
    page.fill("[data-testid=template-ssh-key]", ssh_key)
    page.fill("[data-testid=template-user-data]", user_data)
    page.click("[data-testid=create-from-template]")


def test_a_vm_is_made_from_a_template_through_the_page(
    admin: BrowserContext, api: httpx.Client, kernel_guest: KernelGuest
) -> None:
    assert api.post("/vms", json=kernel_vm(SOURCE, kernel_guest)).status_code == 201
    page = admin.new_page()
    try:
        # Made through the page: an unknown VM is refused in the API's words, nothing made.
        page.goto("/templates")
        page.fill("[data-testid=template-make-form] input[name=name]", TEMPLATE)
        page.fill("[data-testid=template-from-vm]", f"{SOURCE}-nope")
        page.click("[data-testid=make-template]")
        expect(page.locator("[data-testid=make-error]")).to_contain_text(f"{SOURCE}-nope")
        assert api.get(f"/templates/{TEMPLATE}").status_code == 404
        page.fill("[data-testid=template-from-vm]", SOURCE)
        page.click("[data-testid=make-template]")
        row = page.locator(f"tr[data-template='{TEMPLATE}']")
        expect(row.locator("[data-testid=used-by]")).to_have_text(SOURCE)
        page.select_option("[data-testid=template-select]", TEMPLATE)

        _submit(page, ssh_key="not a key")
        expect(page.locator("[data-testid=form-error]")).to_contain_text("SSH")
        _submit(page, user_data="#cloud-config\nruncmd: 5\n")
        expect(page.locator("[data-testid=form-error]")).to_contain_text("not valid cloud-config")
        assert api.get(f"/vms/{MADE}").status_code == 404

        page.select_option("[data-testid=template-select]", TEMPLATE)
        _submit(page)
        expect(page.locator("[data-testid=notice]")).to_contain_text(f"making VM {MADE}")
        save(page, "template-new-vm")
        deadline = time.monotonic() + 60
        while api.get(f"/vms/{MADE}").status_code != 200:
            assert time.monotonic() < deadline, f"{MADE} was not made within 60 s"
            time.sleep(0.2)
    finally:
        page.close()
        for vm in (MADE, SOURCE):
            api.delete(f"/vms/{vm}", params={"delete_disks": "true"})
        api.delete(f"/templates/{TEMPLATE}")
