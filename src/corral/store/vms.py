"""VM inventory: which VMs Corral knows, where they live, and who made them."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Final, Literal

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from corral.model.common import did_you_mean
from corral.model.vm import Accelerator
from corral.store._integrity import conflict_on_integrity, not_found
from corral.store.coltypes import utcnow
from corral.store.hosts import get_host
from corral.store.tables import HaDefinition, Host, Vm

_HINT = "check the name against the list of VMs"


class _Unset(Enum):
    UNSET = "unset"


#: "Leave unchanged" for fields where None is a meaningful value (``accelerator=None``: automatic).
UNSET: Final = _Unset.UNSET


def _duplicate_vm(session: Session, name: str, uuid: str) -> str:
    if session.scalars(select(Vm.id).where(Vm.uuid == uuid)).first() is not None:
        return f"a VM with UUID {uuid} is already registered"
    return f"a VM named {name!r} already exists; VM names are global across hosts, choose another"


def add_vm(
    session: Session,
    *,
    uuid: str,
    name: str,
    host: str,
    created_by: str,
    description: str = "",
    adopted: bool = False,
    accelerator: Accelerator | None = None,
) -> Vm:
    """Record a VM on host ``host``; Conflict on a duplicate name or UUID."""
    vm = Vm(
        uuid=uuid,
        name=name,
        host=get_host(session, host),
        created_by=created_by,
        description=description,
        adopted=adopted,
        accelerator=Accelerator(accelerator).value if accelerator else None,
    )
    with conflict_on_integrity(session, lambda: _duplicate_vm(session, name, uuid)):
        session.add(vm)
    return vm


def find_vm(session: Session, name: str) -> Vm | None:
    return session.scalars(select(Vm).where(Vm.name == name)).one_or_none()


def get_vm(session: Session, name: str) -> Vm:
    vm = find_vm(session, name)
    if vm is None:
        # Every role may list the VMs, so naming the close ones reveals nothing.
        known = session.scalars(select(Vm.name)).all()
        raise not_found("VM", f"named {name!r}", did_you_mean(name, known) or _HINT)
    return vm


def find_vm_by_uuid(session: Session, uuid: str) -> Vm | None:
    """None when unknown: the reconciler uses this to decide whether to adopt a domain."""
    return session.scalars(select(Vm).where(Vm.uuid == uuid)).one_or_none()


def get_vm_by_uuid(session: Session, uuid: str) -> Vm:
    vm = find_vm_by_uuid(session, uuid)
    if vm is None:
        raise not_found("VM", f"with UUID {uuid}", _HINT)
    return vm


def list_vms(session: Session, host: str | None = None) -> list[Vm]:
    """All VMs (or those on ``host``), by name."""
    query = select(Vm).order_by(Vm.name)
    if host is not None:
        query = query.where(Vm.host_id == get_host(session, host).id)
    return list(session.scalars(query))


def vm_placements(session: Session) -> list[tuple[str, str]]:
    """(uuid, host name) of every VM: what the cluster view needs to give each its state,
    without loading whole rows."""
    query = select(Vm.uuid, Host.name).join(Host, Vm.host_id == Host.id)
    return [(uuid, host) for uuid, host in session.execute(query)]


def page_vms(
    session: Session,
    *,
    order: str,
    descending: bool,
    after: tuple[str | datetime, ...] | None,
    limit: int,
    host: str | None = None,
    name_prefix: str | None = None,
) -> list[Vm]:
    """At most ``limit`` VMs in ``order`` (``name``, ``created``: created_at then name,
    ``host``: the host's name then name), those past ``after`` (a key in that order): one
    page, read with the index rather than every row."""
    columns = {
        "name": (Vm.name,),
        "created": (Vm.created_at, Vm.name),
        "host": (Host.name, Vm.name),
    }[order]
    query = select(Vm).join(Vm.host)
    if host is not None:
        query = query.where(Vm.host_id == get_host(session, host).id)
    if name_prefix is not None:
        query = query.where(Vm.name.startswith(name_prefix, autoescape=True))
    if after is not None:
        query = query.where(_past(columns, after, descending))
    ordered = [c.desc() if descending else c.asc() for c in columns]
    return list(session.scalars(query.order_by(*ordered).limit(limit)))


def _past(columns: tuple[Any, ...], key: tuple[Any, ...], descending: bool) -> Any:
    """Rows after ``key`` in the order of ``columns``: compared column by column (not as a
    row value) so that each value is bound with its column's type (UTC times)."""
    first, rest = columns[0], columns[1:]
    beyond = first < key[0] if descending else first > key[0]
    if not rest:
        return beyond
    return or_(beyond, and_(first == key[0], _past(rest, key[1:], descending)))


def update_vm(
    session: Session,
    name: str,
    *,
    new_name: str | None = None,
    host: str | None = None,
    description: str | None = None,
    adopted: bool | None = None,
    accelerator: Accelerator | Literal[_Unset.UNSET] | None = UNSET,
) -> Vm:
    """Change the given fields (None / UNSET: unchanged). ``host`` after a migration,
    ``new_name`` on rename; Conflict if the new name is taken."""
    vm = get_vm(session, name)
    with conflict_on_integrity(session, lambda: _duplicate_vm(session, new_name or name, "")):
        if new_name is not None:
            vm.name = new_name
        if host is not None:
            vm.host = get_host(session, host)
        if description is not None:
            vm.description = description
        if adopted is not None:
            vm.adopted = adopted
        if accelerator is not UNSET:
            vm.accelerator = Accelerator(accelerator).value if accelerator else None
    return vm


def mark_vm_missing(session: Session, name: str, *, since: datetime | None = None) -> Vm:
    """Note that libvirt no longer has this VM; the first sighting's time is kept."""
    vm = get_vm(session, name)
    if vm.missing_since is None:
        vm.missing_since = since or utcnow()
        session.flush()
    return vm


def clear_vm_missing(session: Session, name: str) -> Vm:
    vm = get_vm(session, name)
    vm.missing_since = None
    session.flush()
    return vm


def set_vm_started(session: Session, uuid: str, at: datetime | None) -> None:
    """Record (or, with None, forget) when the VM with ``uuid`` started; unknown UUIDs are
    ignored (an event may arrive before the VM's row)."""
    vm = find_vm_by_uuid(session, uuid)
    if vm is not None:
        vm.started_at = at
        session.flush()


def delete_vm(session: Session, name: str) -> None:
    vm = get_vm(session, name)
    # Its saved HA definition goes with it (no foreign key: it is keyed by the domain's UUID).
    session.execute(delete(HaDefinition).where(HaDefinition.vm_uuid == vm.uuid))
    session.delete(vm)
    session.flush()
