"""The storage domain and network pages in a real browser (Debian's Chromium, driven by
Playwright) against the real server and its private libvirtd: an administrator makes a
shared-dir storage domain and a network through the forms and sees each host's reach and state,
checks them again, makes and deletes a volume, moves a VM's disk onto the domain from the VM's
page, is refused (in words) deleting either while the VM uses them, then deletes both."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Dialog, Page, expect

from corral.testbed.corral_server import CorralServer
from tests.e2e.conftest import choose_kind, log_in, new_context, save

pytestmark = pytest.mark.integration

SUFFIX = secrets.token_hex(2)
DOMAIN = f"e2e-sd-{SUFFIX}"
NETWORK = f"e2e-net-{SUFFIX}"
VM = f"e2e-mover-{SUFFIX}"


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


@pytest.fixture
def page(admin: BrowserContext) -> Iterator[Page]:
    opened = admin.new_page()
    # hx-confirm asks through window.confirm: the administrator says yes.
    opened.on("dialog", lambda dialog: _accept(dialog))
    yield opened
    opened.close()


def _accept(dialog: Dialog) -> None:
    dialog.accept()


def _hosts(api: httpx.Client) -> list[str]:
    answer = api.get("/hosts")
    assert answer.status_code == 200, answer.text
    return sorted(h["name"] for h in answer.json()["items"])


def test_a_shared_dir_domain_made_through_the_page_shows_each_hosts_reach(
    page: Page, api: httpx.Client, tmp_path_factory: pytest.TempPathFactory
) -> None:
    shared: Path = tmp_path_factory.mktemp("e2e-shared-dir")
    page.goto("/storage-domains")
    expect(page.locator("tr[data-domain='local']")).to_be_visible()
    # A relative path: the API's own message next to the field, nothing made.
    page.fill("#sd-form input[name=name]", DOMAIN)
    page.fill("#sd-form input[name=path]", "relative/dir")
    page.click("[data-testid=create-storage-domain]")
    expect(page.locator("[data-testid=error-path]")).to_contain_text("absolute path")
    # The form's fields follow the kind (and keep the name).
    choose_kind(page, "[data-testid=storage-kind]", "nfs", "#sd-form")
    expect(page.locator("#sd-form input[name=server]")).to_be_visible()
    expect(page.locator("#sd-form input[name=name]")).to_have_value(DOMAIN)
    choose_kind(page, "[data-testid=storage-kind]", "shared-dir", "#sd-form")
    page.fill("#sd-form input[name=path]", str(shared))
    save(page, "storage-domain-new")
    page.click("[data-testid=create-storage-domain]")
    page.wait_for_url(f"**/storage-domains/{DOMAIN}")
    rows = page.locator("[data-testid=sd-hosts] tbody tr")
    expect(rows).to_have_count(len(_hosts(api)))
    for host in _hosts(api):
        expect(page.locator(f"tr[data-host='{host}'] [data-testid=reach-state]")).to_have_text(
            "reachable"
        )
    expect(page.locator("[data-testid=sd-capacity]")).not_to_have_text("—")
    page.click("[data-testid=sd-check]")
    expect(page.locator("[data-testid=sd-notice]")).to_contain_text(f"hosts reach {DOMAIN}")
    # A volume made and deleted through the page, in the shared directory.
    page.fill("[data-testid=volume-create] input[name=volume]", "e2e-vol")
    page.fill("[data-testid=volume-create] input[name=size_gib]", "0.01")
    page.click("[data-testid=volume-create] button")
    expect(page.locator("tr[data-volume='e2e-vol']")).to_be_visible()
    assert (shared / "e2e-vol").exists()
    row = page.locator("tr[data-volume='e2e-vol']")
    row.locator("[data-testid=volume-resize] summary").click()
    row.locator("input[name=size_gib]").fill("0.02")
    row.locator("[data-testid=volume-resize] button").click()
    notice = page.locator("[data-testid=sd-notice]")
    expect(notice).to_have_text(re.compile(r"volume e2e-vol now has \d+ bytes"))
    assert int(notice.inner_text().split()[4]) >= 0.02 * 2**30
    save(page, "storage-domain")
    page.click("tr[data-volume='e2e-vol'] [data-testid=volume-delete]")
    expect(page.locator("tr[data-volume='e2e-vol']")).to_have_count(0)
    page.goto("/storage-domains")
    expect(page.locator(f"tr[data-domain='{DOMAIN}'] [data-testid=reach-count]")).to_have_text(
        f"{len(_hosts(api))} of {len(_hosts(api))}"
    )
    save(page, "storage-domains")


def test_a_network_made_through_the_page_shows_its_state_per_host(
    page: Page, api: httpx.Client
) -> None:
    page.goto("/networks")
    choose_kind(page, "[data-testid=network-kind]", "vxlan", "#net-form")
    expect(page.locator("#net-form input[name=vni]")).to_be_visible()
    page.fill("#net-form input[name=name]", NETWORK)
    page.fill("#net-form input[name=vni]", "0")
    page.click("[data-testid=create-network]")
    expect(page.locator("[data-testid=error-vni]")).to_contain_text("greater than or equal to 1")
    choose_kind(page, "[data-testid=network-kind]", "isolated", "#net-form")
    expect(page.locator("#net-form input[name=vni]")).to_have_count(0)
    expect(page.locator("#net-form input[name=name]")).to_have_value(NETWORK)
    page.fill("#net-form input[name=description]", "made in the browser")
    save(page, "network-new")
    page.click("[data-testid=create-network]")
    page.wait_for_url(f"**/networks/{NETWORK}")
    # The page follows the apply task by itself (SSE): each host ends applied.
    for host in _hosts(api):
        expect(page.locator(f"tr[data-host='{host}'] [data-testid=net-state]")).to_have_text(
            "applied", timeout=60_000
        )
    expect(page.locator("[data-testid=tasks]")).to_contain_text("network.create")
    expect(page.locator("[data-testid=tasks] .state-task-succeeded").first).to_be_visible()
    page.click("[data-testid=net-check]")
    expect(page.locator("[data-testid=net-notice]")).to_have_text("checked every connected host")
    save(page, "network")
    page.goto("/networks")
    expect(page.locator(f"tr[data-network='{NETWORK}'] [data-testid=net-states]")).to_contain_text(
        "applied"
    )
    save(page, "networks")


def test_a_disk_moves_onto_the_domain_through_the_vm_page(page: Page, api: httpx.Client) -> None:
    body = {"name": VM, "memory_mib": 64, "disks": [{"name": "data", "size_gib": 0.01}],
            "nics": [{"network": NETWORK}]}  # fmt: skip
    made = api.post("/vms", json=body)
    assert made.status_code == 201, made.text
    page.goto(f"/vms/{VM}")
    disk = page.locator("tr[data-disk='vda']")
    expect(disk.locator("[data-testid=disk-domain]")).to_have_text("local")
    expect(page.locator(f"tr[data-nic] a[href='/networks/{NETWORK}']")).to_be_visible()
    disk.locator("[data-testid=disk-move] summary").click()
    disk.locator("select[name=to]").select_option(DOMAIN)
    disk.locator("[data-testid=disk-move-submit]").click()
    expect(page.locator("[data-testid=change-notice]")).to_contain_text(
        f"moving disk vda to storage domain {DOMAIN}"
    )
    # The task list and the disk's domain follow the move by themselves (SSE).
    expect(page.locator("#vm-tasks tr:has-text('vm.disk.move') .state")).to_have_text(
        "succeeded", timeout=60_000
    )
    page.reload()
    expect(page.locator("tr[data-disk='vda'] [data-testid=disk-domain]")).to_have_text(DOMAIN)
    save(page, "vm-disk-moved")


def test_a_domain_and_a_network_in_use_are_refused_in_words(page: Page) -> None:
    page.goto(f"/storage-domains/{DOMAIN}")
    page.click("[data-testid=sd-delete]")
    expect(page.locator("#flash")).to_contain_text(VM)
    expect(page.locator("h1")).to_have_text(DOMAIN)
    save(page, "storage-domain-in-use")
    page.goto(f"/networks/{NETWORK}")
    page.click("[data-testid=net-delete]")
    expect(page.locator("#flash")).to_contain_text(f"used by the NICs of VM(s) {VM}")


def test_deleting_them_through_the_pages(page: Page, api: httpx.Client) -> None:
    gone = api.delete(f"/vms/{VM}", params={"delete_disks": "true"})
    assert gone.status_code in (200, 204), gone.text
    page.goto("/storage-domains/local")
    expect(page.locator("[data-testid=sd-delete]")).to_have_count(0)  # built in
    page.goto(f"/networks/{NETWORK}")
    page.click("[data-testid=net-delete]")
    page.wait_for_url(re.compile(r"/networks$"))
    expect(page.locator(f"tr[data-network='{NETWORK}']")).to_have_count(0)
    page.goto(f"/storage-domains/{DOMAIN}")
    page.click("[data-testid=sd-delete]")
    page.wait_for_url(re.compile(r"/storage-domains$"))
    expect(page.locator(f"tr[data-domain='{DOMAIN}']")).to_have_count(0)
    assert api.get(f"/storage-domains/{DOMAIN}").status_code == 404
