"""Cluster networks, their state per host, and the labels of host NICs."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from corral.model.common import did_you_mean
from corral.model.network import (
    NetworkCreate,
    NetworkHostState,
    NetworkInfo,
    NetworkKind,
    NetworkOnHost,
    NicLabelInfo,
    bridge_name,
    create_fields,
)
from corral.store._integrity import conflict_on_integrity, not_found
from corral.store.coltypes import utcnow
from corral.store.hosts import get_host
from corral.store.tables import Host, HostNicLabel, Network, NetworkHost


def network_info(session: Session, row: Network) -> NetworkInfo:
    states = session.execute(
        select(Host.name, NetworkHost)
        .join(NetworkHost, NetworkHost.host_id == Host.id)
        .where(NetworkHost.network_id == row.id)
        .order_by(Host.name)
    )
    return NetworkInfo(
        name=row.name,
        kind=NetworkKind(row.kind),
        uplink=row.uplink,
        vni=row.vni,
        vlan=row.vlan,
        required=row.required,
        description=row.description,
        bridge=bridge_name(row.id),
        created_at=row.created_at,
        hosts=[
            NetworkOnHost(
                host=name,
                state=NetworkHostState(state.state),
                reason=state.reason,
                updated_at=state.updated_at,
            )
            for name, state in states
        ],
    )


def _clash(session: Session, name: str, vni: int | None) -> str:
    if session.scalars(select(Network).where(Network.name == name)).first():
        return f"a network named {name!r} already exists; choose another name"
    other = session.scalars(select(Network).where(Network.vni == vni)).first()
    taken = other.name if other else "another network"
    return f"VNI {vni} is taken by network {taken}: each vxlan network needs its own VNI"


def add_network(session: Session, request: NetworkCreate) -> Network:
    uplink, vni, vlan = create_fields(request)
    row = Network(
        name=request.name,
        kind=request.kind.value,
        uplink=uplink,
        vni=vni,
        vlan=vlan,
        required=request.required,
        description=request.description,
    )
    with conflict_on_integrity(session, lambda: _clash(session, request.name, vni)):
        session.add(row)
    return row


def find_network(session: Session, name: str) -> Network | None:
    return session.scalars(select(Network).where(Network.name == name)).one_or_none()


def get_network(session: Session, name: str) -> Network:
    row = find_network(session, name)
    if row is None:
        close = did_you_mean(name, session.scalars(select(Network.name)).all())
        raise not_found(
            "network", f"named {name!r}", close or "`corral network list` shows the networks"
        )
    return row


def list_networks(session: Session) -> list[Network]:
    return list(session.scalars(select(Network).order_by(Network.name)))


def update_network(
    session: Session,
    name: str,
    *,
    required: bool | None = None,
    description: str | None = None,
    uplink: str | None = None,
) -> Network:
    row = get_network(session, name)
    if required is not None:
        row.required = required
    if description is not None:
        row.description = description
    if uplink is not None:
        row.uplink = uplink
    row.updated_at = utcnow()
    session.flush()
    return row


def delete_network(session: Session, name: str) -> None:
    session.delete(get_network(session, name))
    session.flush()


def set_host_state(
    session: Session,
    network: str,
    host: str,
    state: NetworkHostState,
    reason: str | None = None,
) -> None:
    net = get_network(session, network)
    host_row = get_host(session, host)
    row = session.get(NetworkHost, (net.id, host_row.id))
    if row is None:
        row = NetworkHost(network_id=net.id, host_id=host_row.id)
        session.add(row)
    row.state, row.reason, row.updated_at = state.value, reason, utcnow()
    session.flush()


def forget_host_state(session: Session, network: str, host: str) -> None:
    net = get_network(session, network)
    host_row = get_host(session, host)
    session.execute(
        delete(NetworkHost).where(
            NetworkHost.network_id == net.id, NetworkHost.host_id == host_row.id
        )
    )
    session.flush()


def host_states(session: Session, host: str) -> dict[str, NetworkOnHost]:
    """Every network's state on ``host`` (networks never tried there are absent)."""
    rows = session.execute(
        select(Network.name, NetworkHost)
        .join(NetworkHost, NetworkHost.network_id == Network.id)
        .join(Host, Host.id == NetworkHost.host_id)
        .where(Host.name == host)
    )
    return {
        name: NetworkOnHost(
            host=host, state=NetworkHostState(r.state), reason=r.reason, updated_at=r.updated_at
        )
        for name, r in rows
    }


# -- NIC labels ---------------------------------------------------------------------------------
def label_nic(session: Session, host: str, nic: str, label: str) -> None:
    """Put ``label`` on ``nic`` of ``host`` (a label names one NIC per host: moved if set)."""
    host_row = get_host(session, host)
    row = session.get(HostNicLabel, (host_row.id, label))
    if row is None:
        session.add(HostNicLabel(host_id=host_row.id, label=label, nic=nic))
    else:
        row.nic = nic
    session.flush()


def unlabel_nic(session: Session, host: str, nic: str, label: str) -> None:
    host_row = get_host(session, host)
    row = session.get(HostNicLabel, (host_row.id, label))
    if row is None or row.nic != nic:
        hint = f"`corral host nics {host}` shows them"
        raise not_found("label", f"{label!r} on NIC {nic} of host {host}", hint)
    session.delete(row)
    session.flush()


def nic_labels(session: Session, host: str | None = None) -> list[NicLabelInfo]:
    query = (
        select(Host.name, HostNicLabel)
        .join(HostNicLabel, HostNicLabel.host_id == Host.id)
        .order_by(Host.name, HostNicLabel.label)
    )
    if host is not None:
        query = query.where(Host.name == host)
    return [NicLabelInfo(host=name, nic=r.nic, label=r.label) for name, r in session.execute(query)]
