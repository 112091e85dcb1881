"""Beside other instances (PostgreSQL), an instance follows the hosts table: a host another
instance added is connected here, its maintenance and standby are honoured here, and a host
it removed is forgotten here, without a restart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from corral import store
from corral.testbed.guest_domains import wait_until
from corral.testbed.simulated_hosts import write_hosts
from tests.postgres import PgAdmin, fresh_pg_database
from tests.unit.api.conftest import Api, running_api

pytestmark = pytest.mark.postgres


@pytest.fixture
def api(tmp_path_factory: pytest.TempPathFactory, pg_admin: PgAdmin) -> Iterator[Api]:
    for url in fresh_pg_database(pg_admin):
        with running_api(tmp_path_factory.mktemp("follow"), database_url=url) as running:
            yield running


def _shown(api: Api, name: str) -> dict[str, object] | None:
    answer = api.client.get(f"/api/v1/hosts/{name}", headers=api.headers())
    if answer.status_code == 404:
        return None
    assert answer.status_code == 200, answer.text
    shown: dict[str, object] = answer.json()
    return shown


def test_a_host_another_instance_adds_maintains_and_removes_is_followed(api: Api) -> None:
    (other,) = write_hosts(api.services.settings.simulated_hosts_dir, 1, prefix="other")
    assert _shown(api, other.name) is None
    # What another instance's `corral host add` writes.
    api.services.db.sync(
        lambda s: store.add_host(s, other.name, other.uri, libvirt_id=other.host_uuid)
    )
    shown = wait_until(lambda: _shown(api, other.name), 15, f"host {other.name} followed")
    wait_until(lambda: (_shown(api, other.name) or {}).get("connected"), 15, "connected")
    assert shown["uri"] == other.uri

    # Its maintenance, set through the other instance, keeps new VMs off it here too.
    api.services.db.sync(lambda s: store.set_maintenance(s, other.name, True))
    wait_until(lambda: api.services.hosts.in_maintenance(other.name), 15, "maintenance")
    spec = {"name": "fo-vm", "host": other.name, "disks": [{"size_gib": 1}], "nics": []}
    refused = api.client.post("/api/v1/vms", json=spec, headers=api.headers())
    assert refused.status_code == 409 and "is in maintenance" in refused.text, refused.text
    api.services.db.sync(lambda s: store.set_maintenance(s, other.name, False))
    wait_until(lambda: not api.services.hosts.in_maintenance(other.name), 15, "maintenance off")

    # Removed through the other instance: forgotten here.
    api.services.db.sync(lambda s: store.delete_host(s, other.name))
    wait_until(
        lambda: other.name not in {h.name for h in api.services.hosts.all()}, 15, "forgotten"
    )
    assert _shown(api, other.name) is None
