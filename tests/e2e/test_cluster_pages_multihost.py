"""The storage domain and network pages in a real browser against a Corral managing the test
bed's three hosts h1-h3 and its own local host: a shared-dir domain made through the page is
reached by every host but h3, where another filesystem is mounted over the path (the page says
why), and by h3 too once that is gone and the administrator checks again; an nfs domain made
through the same form (its own fields) is reached by every host and says what it cannot do; a
network made through the page ends applied on every host, shown row by row."""

from __future__ import annotations

import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from corral.testbed.corral_server import CorralServer
from corral.testbed.multihost import MultiHostTestbed, TestbedHost
from corral.testbed.storage_server import EXPORT, StorageServer
from tests.e2e.conftest import choose_kind, log_in, new_context, save

pytestmark = pytest.mark.integration

SUFFIX = secrets.token_hex(2)
DOMAIN = f"e2e-split-{SUFFIX}"
NETWORK = f"e2e-quiet-{SUFFIX}"
NFS_DOMAIN = f"e2e-nas-{SUFFIX}"
HOSTS = ("local", "h1", "h2", "h3")


@pytest.fixture(scope="module")
def page(browser: Browser, multihost_corral: CorralServer) -> Iterator[Page]:
    context: BrowserContext = new_context(browser, multihost_corral)
    opened = context.new_page()
    log_in(opened, "admin", multihost_corral.admin_password)
    opened.on("dialog", lambda dialog: dialog.accept())
    yield opened
    context.close()


def _in_host(host: TestbedHost, *argv: str) -> None:
    subprocess.run(host.inside(list(argv)), check=True, capture_output=True)


def _reach(host: str) -> str:
    return f"[data-testid=sd-hosts] tr[data-host='{host}']"


def test_each_hosts_reach_of_a_shared_dir_and_why_not(
    page: Page, testbed: MultiHostTestbed, tmp_path: Path
) -> None:
    h3 = testbed.host("h3")
    _in_host(h3, "mount", "-t", "tmpfs", "corral-e2e", str(tmp_path))
    try:
        page.goto("/storage-domains")
        page.fill("#sd-form input[name=name]", DOMAIN)
        page.fill("#sd-form input[name=path]", str(tmp_path))
        page.click("[data-testid=create-storage-domain]")
        page.wait_for_url(f"**/storage-domains/{DOMAIN}")
        for host in ("local", "h1", "h2"):
            expect(page.locator(f"{_reach(host)} [data-testid=reach-state]")).to_have_text(
                "reachable"
            )
        expect(page.locator(f"{_reach('h3')} [data-testid=reach-state]")).to_have_text(
            "unreachable"
        )
        expect(page.locator(f"{_reach('h3')} [data-testid=reach-reason]")).to_contain_text(
            "not the filesystem the other hosts share"
        )
        expect(page.locator("[data-testid=reach-count]")).to_have_text("3 of 4")
        save(page, "storage-domain-split")
    finally:
        _in_host(h3, "umount", str(tmp_path))
    page.click("[data-testid=sd-check]")
    expect(page.locator("[data-testid=sd-notice]")).to_have_text(
        f"checked: 4 of 4 hosts reach {DOMAIN}"
    )
    expect(page.locator(f"{_reach('h3')} [data-testid=reach-state]")).to_have_text("reachable")
    page.goto("/storage-domains")
    expect(page.locator(f"tr[data-domain='{DOMAIN}'] [data-testid=reach-count]")).to_have_text(
        "4 of 4"
    )


def test_an_nfs_domain_through_the_page_lists_its_hosts_and_limits(
    page: Page, storage_server: StorageServer
) -> None:
    """The form's nfs fields against the test bed's NFS server: every host reaches it (the
    manager's own too: it shares the test bed's network), and the page says what nfs cannot
    do."""
    page.goto("/storage-domains")
    choose_kind(page, "[data-testid=storage-kind]", "nfs", "#sd-form")
    page.fill("#sd-form input[name=name]", NFS_DOMAIN)
    page.fill("#sd-form input[name=server]", storage_server.address)
    page.fill("#sd-form input[name=export]", EXPORT)
    page.click("[data-testid=create-storage-domain]")
    page.wait_for_url(f"**/storage-domains/{NFS_DOMAIN}", timeout=120_000)
    for host in HOSTS:
        expect(page.locator(f"{_reach(host)} [data-testid=reach-state]")).to_have_text("reachable")
    expect(page.locator("[data-testid=sd-capacity]")).not_to_have_text("—")
    expect(page.locator("[data-testid=sd-unsupported]")).to_contain_text("snapshot")
    save(page, "storage-domain-nfs")
    page.click("[data-testid=sd-delete]")
    page.wait_for_url(re.compile(r"/storage-domains$"))
    expect(page.locator(f"tr[data-domain='{NFS_DOMAIN}']")).to_have_count(0)


def test_a_network_is_applied_on_every_host_and_shown_per_host(page: Page) -> None:
    page.goto("/networks")
    for host in HOSTS:
        expect(page.locator(f"[data-testid=host-nics][data-host='{host}']")).to_be_visible()
    choose_kind(page, "[data-testid=network-kind]", "isolated", "#net-form")
    expect(page.locator("#net-form input[name=vni]")).to_have_count(0)
    page.fill("#net-form input[name=name]", NETWORK)
    page.click("[data-testid=create-network]")
    page.wait_for_url(f"**/networks/{NETWORK}")
    for host in HOSTS:
        expect(
            page.locator(f"[data-testid=net-hosts] tr[data-host='{host}'] [data-testid=net-state]")
        ).to_have_text("applied", timeout=120_000)
    expect(page.locator("[data-testid=tasks] .state-task-succeeded").first).to_be_visible()
    save(page, "network-multihost")
    page.goto("/networks")
    expect(page.locator(f"tr[data-network='{NETWORK}'] [data-testid=net-states]")).to_have_text(
        "4 applied"
    )


def test_both_are_deleted_through_the_pages(page: Page, multihost_corral: CorralServer) -> None:
    page.goto(f"/networks/{NETWORK}")
    page.click("[data-testid=net-delete]")
    page.wait_for_url(re.compile(r"/networks$"))
    expect(page.locator(f"tr[data-network='{NETWORK}']")).to_have_count(0)
    page.goto(f"/storage-domains/{DOMAIN}")
    page.click("[data-testid=sd-delete]")
    page.wait_for_url(re.compile(r"/storage-domains$"))
    with multihost_corral.client() as api:
        assert api.get(f"/storage-domains/{DOMAIN}").status_code == 404
