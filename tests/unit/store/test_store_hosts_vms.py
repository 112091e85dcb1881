"""Hosts and the VM inventory."""

from __future__ import annotations

from datetime import timedelta

import pytest

from corral.errors import Conflict, NotFound
from corral.model.vm import Accelerator
from corral.store import (
    Store,
    add_host,
    add_vm,
    clear_vm_missing,
    delete_host,
    delete_vm,
    find_vm_by_uuid,
    get_host,
    get_vm,
    get_vm_by_uuid,
    host_info,
    list_hosts,
    list_vms,
    mark_vm_missing,
    update_vm,
)
from corral.store.coltypes import utcnow

U1 = "00000000-0000-4000-8000-000000000001"
U2 = "00000000-0000-4000-8000-000000000002"
U3 = "00000000-0000-4000-8000-000000000003"


@pytest.fixture
def hosts(store: Store) -> Store:
    with store.session() as s:
        add_host(s, "h1", "qemu:///system")
        add_host(s, "h2", "qemu+tls://h2/system", Accelerator.TCG)
    return store


def test_hosts(hosts: Store) -> None:
    with hosts.session() as s:
        assert [h.name for h in list_hosts(s)] == ["h1", "h2"]
        info = host_info(get_host(s, "h2"), connected=True)
        assert (info.uri, info.accelerator, info.connected) == (
            "qemu+tls://h2/system",
            Accelerator.TCG,
            True,
        )
        assert host_info(get_host(s, "h1")).accelerator is None
        with pytest.raises(Conflict, match="host named 'h1' already exists"):
            add_host(s, "h1", "qemu:///other")
        with pytest.raises(NotFound, match="no host named 'h9'"):
            get_host(s, "h9")
        delete_host(s, "h2")
        assert [h.name for h in list_hosts(s)] == ["h1"]


def test_host_with_vms_cannot_be_deleted(hosts: Store) -> None:
    with hosts.session() as s:
        add_vm(s, uuid=U1, name="web", host="h1", created_by="alice")
    with hosts.session() as s, pytest.raises(Conflict, match="still has 1 VM"):
        delete_host(s, "h1")
    with hosts.session() as s:
        delete_vm(s, "web")
        delete_host(s, "h1")


def test_add_get_list_vms(hosts: Store) -> None:
    with hosts.session() as s:
        add_vm(s, uuid=U1, name="web", host="h1", created_by="alice", description="front")
        add_vm(s, uuid=U2, name="db", host="h2", created_by="alice", accelerator=Accelerator.KVM)
        add_vm(s, uuid=U3, name="adopted", host="h1", created_by="reconciler", adopted=True)
    with hosts.session() as s:
        web = get_vm(s, "web")
        assert (web.uuid, web.host.name, web.description, web.adopted) == (U1, "h1", "front", False)
        assert get_vm_by_uuid(s, U2).accelerator == "kvm"
        assert find_vm_by_uuid(s, "ffffffff-0000-4000-8000-000000000000") is None
        assert [v.name for v in list_vms(s)] == ["adopted", "db", "web"]
        assert [v.name for v in list_vms(s, host="h1")] == ["adopted", "web"]
        with pytest.raises(NotFound, match="no VM named 'nope'"):
            get_vm(s, "nope")
        with pytest.raises(NotFound, match="UUID"):
            get_vm_by_uuid(s, "ffffffff-0000-4000-8000-000000000000")
        with pytest.raises(NotFound, match="host"):
            list_vms(s, host="h9")


def test_vm_names_and_uuids_are_unique_across_hosts(hosts: Store) -> None:
    with hosts.session() as s:
        add_vm(s, uuid=U1, name="web", host="h1", created_by="alice")
    with hosts.session() as s:
        with pytest.raises(Conflict, match="VM named 'web' already exists"):
            add_vm(s, uuid=U2, name="web", host="h2", created_by="alice")
        with pytest.raises(Conflict, match=f"UUID {U1} is already registered"):
            add_vm(s, uuid=U1, name="other", host="h2", created_by="alice")
        add_vm(s, uuid=U2, name="web2", host="h2", created_by="alice")
    with hosts.session() as s:
        assert [v.name for v in list_vms(s)] == ["web", "web2"]


def test_update_vm(hosts: Store) -> None:
    with hosts.session() as s:
        add_vm(s, uuid=U1, name="web", host="h1", created_by="a", accelerator=Accelerator.TCG)
        add_vm(s, uuid=U2, name="db", host="h1", created_by="a")
    with hosts.session() as s:
        update_vm(s, "web", host="h2", description="moved", adopted=True)
        assert get_vm(s, "web").accelerator == "tcg"  # UNSET: unchanged
        update_vm(s, "web", accelerator=None)
        with pytest.raises(Conflict, match="VM named 'db' already exists"):
            update_vm(s, "web", new_name="db")
        update_vm(s, "web", new_name="www")
    with hosts.session() as s:
        vm = get_vm(s, "www")
        assert (vm.host.name, vm.description, vm.adopted, vm.accelerator) == (
            "h2",
            "moved",
            True,
            None,
        )
        update_vm(s, "www", accelerator=Accelerator.KVM, description=None)
        assert get_vm(s, "www").accelerator == "kvm" and get_vm(s, "www").description == "moved"


def test_missing_marks(hosts: Store) -> None:
    first = utcnow() - timedelta(minutes=5)
    with hosts.session() as s:
        add_vm(s, uuid=U1, name="web", host="h1", created_by="a")
        assert get_vm(s, "web").missing_since is None
        mark_vm_missing(s, "web", since=first)
        mark_vm_missing(s, "web")  # a later sighting keeps the first time
    with hosts.session() as s:
        assert get_vm(s, "web").missing_since == first
        clear_vm_missing(s, "web")
    with hosts.session() as s:
        assert get_vm(s, "web").missing_since is None


def test_delete_vm(hosts: Store) -> None:
    with hosts.session() as s:
        add_vm(s, uuid=U1, name="web", host="h1", created_by="a")
    with hosts.session() as s:
        delete_vm(s, "web")
        with pytest.raises(NotFound):
            delete_vm(s, "web")
    with hosts.session() as s:
        assert list_vms(s) == []
