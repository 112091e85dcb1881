"""The VM page's Migrate action: shown to operators when another host can take the VM, and
the API's refusals come back as the page's error."""

from __future__ import annotations

from fastapi.testclient import TestClient

from corral.model.auth import Role
from corral.model.cluster import ClusterSettingsUpdate
from corral.services.principal import Principal
from tests.unit.web.conftest import Api, log_in


def test_no_migrate_form_without_another_host(api: Api, browser: TestClient) -> None:
    log_in(browser)
    page = browser.get("/ui/fragments/vms/test")
    assert page.status_code == 200
    assert 'data-testid="migrate-form"' not in page.text  # test:///default is the only host


def test_the_form_lists_destinations_and_only_allowed_transports(
    api: Api, browser: TestClient, monkeypatch: object
) -> None:
    from corral.web.pages import vms

    async def choices(svc: object, current: str) -> dict[str, object]:
        return {"migrate_hosts": ["h2", "h3"], "migrate_transports": [("ssh", "s"), ("tls", "t")]}

    monkeypatch.setattr(vms, "_migration_choices", choices)  # type: ignore[attr-defined]
    log_in(browser)
    page = browser.get("/ui/fragments/vms/test").text
    assert 'data-testid="migrate-form"' in page
    assert '<option value="h2">h2</option>' in page and '<option value="h3">h3</option>' in page
    assert 'value="tls" title="t" selected' in page
    viewer = TestClient(api.client.app, base_url="http://testserver")
    log_in(viewer, "viewer")
    assert 'data-testid="migrate-form"' not in viewer.get("/ui/fragments/vms/test").text


async def test_choices_hide_insecure_until_allowed(api: Api) -> None:
    from corral.web.pages.vms import _migration_choices

    found = await _migration_choices(api.services, "test")
    assert found["migrate_hosts"] == []
    assert [name for name, _ in found["migrate_transports"]] == ["ssh", "tls"]
    admin = Principal(user="admin", role=Role.ADMIN)
    await api.services.cluster.update(admin, ClusterSettingsUpdate(allow_insecure_migration=True))
    try:
        found = await _migration_choices(api.services, "test")
        assert [name for name, _ in found["migrate_transports"]] == ["insecure", "ssh", "tls"]
    finally:
        off = ClusterSettingsUpdate(allow_insecure_migration=False)
        await api.services.cluster.update(admin, off)


def test_a_refused_migration_shows_why(api: Api, browser: TestClient) -> None:
    csrf = log_in(browser)
    answer = browser.post(
        "/ui/vms/test/migrate", data={"to": "test"}, headers={"X-CSRF-Token": csrf}
    )
    assert answer.status_code == 409
    assert "already runs on host test" in answer.text
