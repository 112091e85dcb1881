"""Templates in the store (one row each, with the definition and the base volumes), and the
cloud-init settings of VMs made from them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from corral.model.common import did_you_mean
from corral.store._integrity import conflict_on_integrity, not_found
from corral.store.coltypes import utcnow
from corral.store.hosts import get_host
from corral.store.tables import Host, Template, VmCloudInit


def add_template(
    session: Session,
    *,
    name: str,
    host: str,
    source_vm: str,
    xml: str,
    disks: list[dict[str, Any]],
    arch: str,
    vcpus: int,
    memory_mib: int,
    created_by: str,
    description: str = "",
) -> Template:
    """Record a template; Conflict when the name is taken."""
    row = Template(
        name=name,
        host=get_host(session, host),
        source_vm=source_vm,
        xml=xml,
        disks=disks,
        arch=arch,
        vcpus=vcpus,
        memory_mib=memory_mib,
        created_by=created_by,
        description=description,
    )
    with conflict_on_integrity(
        session, lambda: f"a template named {name!r} already exists; choose another name"
    ):
        session.add(row)
    return row


def find_template(session: Session, name: str) -> Template | None:
    return session.scalars(select(Template).where(Template.name == name)).unique().one_or_none()


def get_template(session: Session, name: str) -> Template:
    row = find_template(session, name)
    if row is None:
        known = session.scalars(select(Template.name)).all()
        hint = did_you_mean(name, known) or "`corral template list` shows them"
        raise not_found("template", f"named {name!r}", hint)
    return row


def list_templates(session: Session) -> list[Template]:
    return list(session.scalars(select(Template).order_by(Template.name)).unique())


def template_bases(session: Session, host: str) -> set[str]:
    """Paths of the base volumes templates keep on ``host`` (never deleted with a VM)."""
    rows = session.scalars(
        select(Template).join(Host, Template.host_id == Host.id).where(Host.name == host)
    ).unique()
    return {str(d["path"]) for row in rows for d in row.disks}


def delete_template(session: Session, name: str) -> None:
    session.delete(get_template(session, name))
    session.flush()


def save_cloud_init(
    session: Session,
    *,
    vm_uuid: str,
    config: dict[str, Any],
    instance_id: str,
    user_data_digest: str | None,
    user_data_size: int | None,
    set_by: str,
) -> None:
    """Store (or replace) a VM's cloud-init settings, sealed."""
    row = session.get(VmCloudInit, vm_uuid)
    if row is None:
        row = VmCloudInit(vm_uuid=vm_uuid)
        session.add(row)
    row.config, row.instance_id, row.set_by = config, instance_id, set_by
    row.user_data_digest, row.user_data_size, row.set_at = (
        user_data_digest,
        user_data_size,
        utcnow(),
    )
    session.flush()


def cloud_init(session: Session, vm_uuid: str) -> VmCloudInit | None:
    return session.get(VmCloudInit, vm_uuid)


def forget_cloud_init(session: Session, vm_uuid: str) -> None:
    row = session.get(VmCloudInit, vm_uuid)
    if row is not None:
        session.delete(row)
        session.flush()
