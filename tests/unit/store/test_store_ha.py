"""HA in the store: priorities, saved definitions (replaced only when they changed, gone with
HA off or the VM), hosts' HA states (``since`` moves only with the state)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from corral.store import Store, add_host, add_vm, delete_vm
from corral.store import ha as ha_store


@pytest.fixture
def store(engine: Engine) -> Store:
    return Store(engine)


def test_ha_vms_definitions_and_host_states(store: Store) -> None:
    with store.session() as s:
        add_host(s, "h1", "test:///default")
        for name, uuid in (("a", "00000000-0000-0000-0000-00000000000a"),
                           ("b", "00000000-0000-0000-0000-00000000000b")):  # fmt: skip
            add_vm(s, uuid=uuid, name=name, host="h1", created_by="t")
        ha_store.set_vm_ha(s, "a", 10)
        ha_store.set_vm_ha(s, "b", 90)
        ha_store.save_definition(s, "00000000-0000-0000-0000-00000000000a", "<domain/>", "d1")
    with store.reading() as s:
        assert [v.name for v in ha_store.ha_vms(s)] == ["b", "a"]  # higher priority first
        assert [v.name for v in ha_store.ha_vms(s, host="h1")] == ["b", "a"]
        assert ha_store.definition_digests(s) == {"00000000-0000-0000-0000-00000000000a": "d1"}
        first = ha_store.definition(s, "00000000-0000-0000-0000-00000000000a")
        assert first is not None
        saved_at = first.updated_at
    with store.session() as s:
        ha_store.save_definition(s, "00000000-0000-0000-0000-00000000000a", "<domain/>", "d1")
        unchanged = ha_store.definition(s, "00000000-0000-0000-0000-00000000000a")
        assert unchanged is not None and unchanged.updated_at == saved_at
        ha_store.save_definition(s, "00000000-0000-0000-0000-00000000000a", "<x/>", "d2")
    with store.session() as s:
        ha_store.set_vm_ha(s, "b", None)
        delete_vm(s, "a")
    with store.reading() as s:
        assert ha_store.ha_vms(s) == [] and ha_store.definition_digests(s) == {}

    with store.session() as s:
        host = ha_store.set_host_ha(s, "h1", "suspect", "silent")
        since = host.ha_since
        host = ha_store.set_host_ha(s, "h1", "suspect", "still silent")
        assert host.ha_since == since and host.ha_reason == "still silent"
        host = ha_store.set_host_ha(s, "h1", "fencing", "switching it off")
        assert host.ha_since is not None and since is not None and host.ha_since >= since
