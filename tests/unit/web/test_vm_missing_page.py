"""A VM whose domain no connected host has: its page says what to check, and never that it
should be deleted (it may run on a host Corral cannot see)."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from corral import store
from tests.unit.web.conftest import Api, log_in


def test_the_page_of_a_missing_vm_says_what_to_check(api: Api, browser: TestClient) -> None:
    lost = str(uuid.uuid4())
    api.services.db.sync(
        lambda s: store.add_vm(s, uuid=lost, name="lost-vm", host="test", created_by="admin")
    )
    try:
        log_in(browser, "viewer")
        page = browser.get("/ui/fragments/vms/lost-vm")
        assert page.status_code == 200
        assert 'data-testid="vm-state">missing<' in page.text
        assert 'data-testid="vm-missing"' in page.text
        assert f"No connected host has this VM's domain (UUID {lost})" in page.text
        assert "Check the Hosts page" in page.text
        found = browser.get("/ui/fragments/vms/test").text  # a VM libvirt has: no such notice
        assert 'data-testid="vm-missing"' not in found
    finally:
        api.services.db.sync(lambda s: store.delete_vm(s, "lost-vm"))
