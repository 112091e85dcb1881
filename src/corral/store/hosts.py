"""Hosts: the libvirt daemons Corral manages (connection state lives in services, not here)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from corral.errors import Conflict
from corral.model.common import did_you_mean
from corral.model.host import HostCapabilities, HostInfo, HostStatus, SshAccess
from corral.model.pki import CertInfo
from corral.model.vm import Accelerator
from corral.store._integrity import conflict_on_integrity, not_found
from corral.store.tables import Host, Vm


def host_info(
    host: Host,
    *,
    connected: bool = False,
    capabilities: HostCapabilities | None = None,
    last_error: str | None = None,
    certificates: list[CertInfo] | None = None,
    power_driver: str | None = None,
) -> HostInfo:
    """The stored half of a HostInfo; the live half (connection, capabilities, certificates
    on disk) comes as args."""
    if host.maintenance:
        status = HostStatus.MAINTENANCE
    elif host.standby:
        status = HostStatus.STANDBY
    else:
        status = HostStatus.CONNECTED if connected else HostStatus.UNREACHABLE
    return HostInfo(
        name=host.name,
        uri=host.uri,
        status=status,
        connected=connected,
        maintenance=host.maintenance,
        standby=host.standby,
        power_driver=power_driver,
        accelerator=Accelerator(host.accelerator) if host.accelerator else None,
        address=host.address,
        enrolled=host.address is not None,
        certificates=certificates or [],
        capabilities=capabilities,
        last_error=None if host.standby else last_error,
        ha_state=host.ha_state,
        ha_reason=host.ha_reason,
    )


def add_host(
    session: Session,
    name: str,
    uri: str,
    accelerator: Accelerator | None = None,
    libvirt_id: str | None = None,
    *,
    address: str | None = None,
    ssh: SshAccess | None = None,
) -> Host:
    host = Host(
        name=name,
        uri=uri,
        accelerator=Accelerator(accelerator).value if accelerator else None,
        libvirt_id=libvirt_id,
        address=address,
    )
    if ssh is not None:
        _set_ssh(host, ssh)

    def explain() -> str:
        twin = find_host_by_libvirt_id(session, libvirt_id) if libvirt_id else None
        if twin is not None and twin.name != name:
            return already_registered(twin.name, libvirt_id or "")
        return f"a host named {name!r} already exists; choose another name"

    with conflict_on_integrity(session, explain):
        session.add(host)
    return host


def already_registered(existing: str, libvirt_id: str) -> str:
    what = libvirt_id.replace("uuid:", "host UUID ", 1).replace("uri:", "URI ", 1)
    return (
        f"this libvirt host is already registered as {existing!r} ({what}): registering it "
        "twice would count its CPUs and memory twice; use that host, or remove it first with "
        f"`corral host remove {existing}`"
    )


def find_host_by_libvirt_id(session: Session, libvirt_id: str) -> Host | None:
    return session.scalars(select(Host).where(Host.libvirt_id == libvirt_id)).one_or_none()


def claim_libvirt_id(session: Session, name: str, libvirt_id: str) -> None:
    """Record which daemon host ``name`` is; Conflict if another host already is that daemon."""
    host = get_host(session, name)
    if host.libvirt_id == libvirt_id:
        return
    twin = find_host_by_libvirt_id(session, libvirt_id)
    if twin is not None:
        raise Conflict(already_registered(twin.name, libvirt_id))
    with conflict_on_integrity(session, lambda: already_registered("another host", libvirt_id)):
        host.libvirt_id = libvirt_id


def find_host(session: Session, name: str) -> Host | None:
    return session.scalars(select(Host).where(Host.name == name)).one_or_none()


def get_host(session: Session, name: str) -> Host:
    host = find_host(session, name)
    if host is None:
        # Every role may list the hosts, so naming the close ones reveals nothing.
        close = did_you_mean(name, session.scalars(select(Host.name)).all())
        hint = close or "check the name against the list of hosts"
        raise not_found("host", f"named {name!r}", hint)
    return host


def list_hosts(session: Session) -> list[Host]:
    return list(session.scalars(select(Host).order_by(Host.name)))


def delete_host(session: Session, name: str) -> None:
    """Forget a host; Conflict while VMs are still recorded on it."""
    host = get_host(session, name)
    count = session.scalar(select(func.count()).where(Vm.host_id == host.id)) or 0
    if count:
        raise Conflict(
            f"host {name!r} still has {count} VM(s); migrate or delete them before removing it"
        )
    session.delete(host)
    session.flush()


def _set_ssh(host: Host, ssh: SshAccess) -> None:
    host.ssh_destination, host.ssh_port, host.ssh_key_path = ssh.destination, ssh.port, ssh.key_path


def host_ssh(host: Host) -> SshAccess | None:
    """How the host was reached over SSH when it was enrolled, if it was."""
    if host.ssh_destination is None:
        return None
    return SshAccess(
        destination=host.ssh_destination, port=host.ssh_port or 22, key_path=host.ssh_key_path
    )


def update_enrollment(
    session: Session, name: str, address: str | None, ssh: SshAccess | None
) -> None:
    host = get_host(session, name)
    host.address = address
    if ssh is not None:
        _set_ssh(host, ssh)
    session.flush()


def set_accelerator(session: Session, name: str, accelerator: Accelerator | None) -> None:
    get_host(session, name).accelerator = accelerator.value if accelerator else None
    session.flush()


def set_maintenance(session: Session, name: str, enabled: bool) -> Host:
    host = get_host(session, name)
    host.maintenance = enabled
    session.flush()
    return host
