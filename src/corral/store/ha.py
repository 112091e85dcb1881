"""High availability in the store: HA VMs, their saved definitions, hosts' HA states."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from corral.store.coltypes import utcnow
from corral.store.hosts import get_host
from corral.store.tables import HaDefinition, Host, Vm
from corral.store.vms import get_vm


def set_vm_ha(session: Session, name: str, priority: int | None) -> Vm:
    """HA on with ``priority``, or off (None: its saved definition goes too)."""
    vm = get_vm(session, name)
    vm.ha_priority = priority
    vm.ha_waiting = None
    if priority is None:
        session.execute(delete(HaDefinition).where(HaDefinition.vm_uuid == vm.uuid))
    session.flush()
    return vm


def ha_vms(session: Session, host: str | None = None) -> list[Vm]:
    """HA VMs (on ``host``), highest priority first, then by name."""
    query = select(Vm).where(Vm.ha_priority.is_not(None))
    if host is not None:
        query = query.join(Host, Vm.host_id == Host.id).where(Host.name == host)
    return list(session.scalars(query.order_by(Vm.ha_priority.desc(), Vm.name)).unique())


def set_vm_waiting(session: Session, uuid: str, reason: str | None) -> None:
    vm = session.scalars(select(Vm).where(Vm.uuid == uuid)).unique().one_or_none()
    if vm is not None:
        vm.ha_waiting = reason
        session.flush()


def save_definition(session: Session, uuid: str, xml: str, digest: str) -> None:
    """Store (or replace) the definition of HA VM ``uuid`` when it changed."""
    found = session.get(HaDefinition, uuid)
    if found is None:
        session.add(HaDefinition(vm_uuid=uuid, xml=xml, digest=digest, updated_at=utcnow()))
    elif found.digest != digest:
        found.xml, found.digest, found.updated_at = xml, digest, utcnow()
    session.flush()


def definition(session: Session, uuid: str) -> HaDefinition | None:
    return session.get(HaDefinition, uuid)


def definition_digests(session: Session) -> dict[str, str]:
    rows = session.execute(select(HaDefinition.vm_uuid, HaDefinition.digest)).all()
    return {str(uuid): str(digest) for uuid, digest in rows}


def forget_definition(session: Session, uuid: str) -> None:
    session.execute(delete(HaDefinition).where(HaDefinition.vm_uuid == uuid))


def set_host_ha(session: Session, name: str, state: str, reason: str = "") -> Host:
    """The host's HA state (``since`` moves only when the state changes)."""
    host = get_host(session, name)
    if host.ha_state != state:
        host.ha_since = utcnow()
    host.ha_state, host.ha_reason = state, reason
    session.flush()
    return host
