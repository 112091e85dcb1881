"""The agent's network operations on two enrolled test-bed hosts with a LAN NIC each (h1
``ens4``, h2 ``enp2s0``): VXLAN bridges that carry traffic between the hosts, changes that are
rolled back without ``net.confirm``, a change that cuts a host's management link and undoes
itself, failures that restore at once, and what the agent refuses up front.

The manager side is the real one (``HostAgents`` reading the Corral server's database: the
SSH access its enrollment recorded)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from corral.errors import CorralError, HostError
from corral.services._db import Db
from corral.services.host_agents import HostAgents
from corral.store import Store
from corral.testbed.corral_server import CorralServer
from corral.testbed.enroll import enroll_all
from corral.testbed.multihost import MultiHostTestbed, TestbedHost, allocate_slot
from corral.testbed.private_libvirtd import PrivateLibvirtd
from tests.conftest import LIBVIRT_CACHE

pytestmark = pytest.mark.integration

VXLAN_BRIDGE = "crlb-0000a001"
LAN_BRIDGE = "crlb-0000b002"
MGMT_BRIDGE = "crlb-0000c003"


@pytest.fixture(scope="module")
def lan_bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MultiHostTestbed]:
    slot, lock = allocate_slot()
    bed = MultiHostTestbed(
        tmp_path_factory.mktemp("net-bed"), hosts=2, slot=slot, shared_cache=LIBVIRT_CACHE, lan=True
    )
    try:
        bed.up()
        yield bed
    finally:
        bed.down()
        lock.close()


@pytest.fixture(scope="module")
def server(
    private_libvirtd: PrivateLibvirtd,
    lan_bed: MultiHostTestbed,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[CorralServer]:
    corral = CorralServer(
        tmp_path_factory.mktemp("net-corral"),
        private_libvirtd.uri,
        extra_env={"CORRAL_RECONCILE_INTERVAL_S": "3600", "PYTHONFAULTHANDLER": "1"},
    )
    corral.start()
    try:
        with corral.client() as client:
            enroll_all(client, lan_bed)
        yield corral
    finally:
        corral.stop()


@pytest.fixture
def agents(server: CorralServer) -> Iterator[HostAgents]:
    data = server.base_dir / "data"
    store = Store.from_url(f"sqlite:///{data / 'corral.db'}", migrate=False)
    yield HostAgents(Db(store), data / "ssh" / "known_hosts")
    store.dispose()


def _ip(host: TestbedHost, *args: str) -> Any:
    done = subprocess.run(
        ["ip", "-n", host.netns, "-j", *args], capture_output=True, text=True, timeout=10
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout or "[]")


def _links(host: TestbedHost) -> dict[str, dict[str, Any]]:
    return {link["ifname"]: link for link in _ip(host, "-d", "link", "show")}


def _addresses(host: TestbedHost, dev: str) -> list[str]:
    found = _ip(host, "addr", "show", "dev", dev)
    return [
        f"{a['local']}/{a['prefixlen']}" for a in found[0]["addr_info"] if a["family"] == "inet"
    ]


def _corral_links(host: TestbedHost) -> set[str]:
    return {name for name in _links(host) if name.startswith("crl")}


def _sh(*argv: str) -> None:
    subprocess.run(argv, check=True, timeout=10, capture_output=True)


def _ping(host: TestbedHost, address: str) -> bool:
    # busybox's ping: the machine has no iputils-ping (busybox-static is installed for guests).
    argv = ["ip", "netns", "exec", host.netns, "busybox", "ping", "-c", "1", "-W", "1", address]
    return subprocess.run(argv, capture_output=True, timeout=10).returncode == 0


def _wait(check: Any, seconds: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if check():
            return time.monotonic() - start
        time.sleep(0.2)
    raise AssertionError(f"{what} not within {seconds:g} s")


async def _apply(
    agents: HostAgents, host: str, change: str, bridges: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    args = {"change_id": change, "bridges": bridges, **extra}
    return await agents.call(host, "net.apply", args, timeout_s=extra.pop("timeout_s", 30))


async def _apply_confirmed(
    agents: HostAgents, host: str, change: str, bridges: list[dict[str, Any]]
) -> dict[str, Any]:
    applied = await _apply(agents, host, change, bridges)
    await agents.call(host, "net.confirm", {"change_id": change}, timeout_s=30)
    return applied


def _vxlan(bed: MultiHostTestbed, me: str, vni: int = 4242) -> dict[str, Any]:
    peers = [h.address for h in bed.hosts if h.name != me]
    local = bed.host(me).address
    return {"vni": vni, "local": local, "peers": peers, "dstport": 4789}


async def test_vxlan_bridges_carry_traffic_between_two_hosts(
    agents: HostAgents, lan_bed: MultiHostTestbed
) -> None:
    h1, h2 = lan_bed.hosts
    for host, address in ((h1, "10.77.0.1/24"), (h2, "10.77.0.2/24")):
        spec = {"bridge": VXLAN_BRIDGE, "vxlan": _vxlan(lan_bed, host.name)}
        applied = await _apply_confirmed(agents, host.name, f"vx-{host.name}", [spec])
        assert applied["pending"] is True and 0 < applied["rollback_in_s"] <= 30
        # The test's own address on the bridge, to send traffic across it from the host.
        _sh("ip", "-n", host.netns, "addr", "add", address, "dev", VXLAN_BRIDGE)
    vx = _links(h1)["crlv-0000a001"]
    assert vx["linkinfo"]["info_kind"] == "vxlan" and vx["linkinfo"]["info_data"]["id"] == 4242
    assert vx["master"] == VXLAN_BRIDGE
    _wait(lambda: _ping(h1, "10.77.0.2"), 15, "h1 reaching h2 over the VXLAN bridge")
    assert _ping(h2, "10.77.0.1")

    state = await agents.call("h1", "net.state", {}, timeout_s=30)
    assert state["pending"] is None
    [bridge] = state["bridges"]
    assert bridge["bridge"] == VXLAN_BRIDGE and bridge["present"] and bridge["problems"] == []
    assert bridge["vxlan"]["peers"] == [h2.address]
    assert state["history"][-1]["outcome"] == "confirmed"

    # Drift is seen: the peer entry removed by hand.
    _sh(
        "bridge",
        "-n",
        h1.netns,
        "fdb",
        "del",
        "00:00:00:00:00:00",
        "dev",
        "crlv-0000a001",
        "dst",
        h2.address,
    )
    [drifted] = (await agents.call("h1", "net.state", {}, timeout_s=30))["bridges"]
    assert drifted["problems"] == [f"crlv-0000a001's peers differ from {h2.address}"]

    for host in (h1, h2):
        await _apply_confirmed(agents, host.name, f"vx-off-{host.name}", [])
        assert _corral_links(host) == set()


async def test_vxlan_change_without_confirmation_is_rolled_back(
    agents: HostAgents, lan_bed: MultiHostTestbed
) -> None:
    h1 = lan_bed.host("h1")
    spec = {"bridge": VXLAN_BRIDGE, "vxlan": _vxlan(lan_bed, "h1"), "uplink": h1.lan_nic}
    await _apply(agents, "h1", "unconfirmed", [spec], rollback_after_s=5)
    assert _corral_links(h1) == {VXLAN_BRIDGE, "crlv-0000a001"}
    assert _links(h1)[h1.lan_nic or ""]["master"] == VXLAN_BRIDGE
    took = _wait(lambda: not _corral_links(h1), 15, "the rollback")
    assert "master" not in _links(h1)[h1.lan_nic or ""]
    assert took < 10
    with pytest.raises(HostError, match=r"unconfirmed was rolled-back .no confirmation within 5 s"):
        await agents.call("h1", "net.confirm", {"change_id": "unconfirmed"}, timeout_s=30)
    state = await agents.call("h1", "net.state", {}, timeout_s=30)
    assert state["bridges"] == [] and state["pending"] is None


async def test_a_change_that_cuts_the_management_link_rolls_back_by_itself(
    agents: HostAgents, lan_bed: MultiHostTestbed, server: CorralServer
) -> None:
    """h2's management NIC eth0 goes into a bridge (its address and routes move onto the
    bridge, as Proxmox's vmbr0 has them): confirmed, Corral still reaches h2. Then the bridge's
    uplink is switched to enp2s0 — the classic "wrong port" mistake: that NIC is on a LAN
    Corral is not on, so the address on the bridge now answers only there. The apply's reply
    never arrives, no confirmation can; h2 restores eth0 as the bridge's uplink by itself
    within the default 20 s, and Corral reaches it again (its agent, over the recorded SSH
    access)."""
    h2 = lan_bed.host("h2")
    before = _addresses(h2, "eth0")
    assert before == [f"{h2.address}/24"]
    mgmt = {"bridge": MGMT_BRIDGE, "uplink": "eth0"}
    await _apply_confirmed(agents, "h2", "mgmt-bridge", [mgmt])
    assert _addresses(h2, MGMT_BRIDGE) == before and _addresses(h2, "eth0") == []
    assert _links(h2)["eth0"]["master"] == MGMT_BRIDGE

    started, sent_at = time.monotonic(), time.time()  # the host shares this machine's clock
    with pytest.raises(CorralError):  # the reply is lost with the link
        await _apply(agents, "h2", "wrong-port", [{**mgmt, "uplink": h2.lan_nic}], timeout_s=8)
    with pytest.raises(CorralError):
        await agents.call("h2", "net.confirm", {"change_id": "wrong-port"}, timeout_s=5)

    deadline = started + 45
    while True:
        try:
            state = await agents.call("h2", "net.state", {}, timeout_s=3)
            break
        except CorralError:
            assert time.monotonic() < deadline, "h2 did not come back within 45 s"
    back_after = time.monotonic() - started
    assert back_after < 45
    rolled_back = state["history"][-1]
    assert rolled_back["change_id"] == "wrong-port" and rolled_back["outcome"] == "rolled-back"
    assert rolled_back["reason"] == "no confirmation within 20 s"
    # Restored 20 s after the change was made on h2 (the SSH login and the agent's start
    # before it are not the host's time without Corral).
    restored_after = rolled_back["after_s"]
    assert 20 <= restored_after <= 20.5
    assert rolled_back["at"] - sent_at < 25
    [bridge] = state["bridges"]
    assert bridge["uplink"] == "eth0" and bridge["problems"] == []
    assert _links(h2)["eth0"]["master"] == MGMT_BRIDGE
    assert "master" not in _links(h2)[h2.lan_nic or ""]

    await _apply_confirmed(agents, "h2", "mgmt-off", [])
    assert _addresses(h2, "eth0") == before and _corral_links(h2) == set()
    # Corral's own libvirt connection to h2 was dropped by keep-alive while h2 was cut off,
    # and comes back by itself; the manager survives that (it crashed inside libvirt's client
    # when it closed the lost connection under a call still in flight).
    deadline = time.monotonic() + 90
    with server.client() as client:
        while not (h2_row := client.get("/hosts/h2").json())["connected"]:
            assert server.running, "the Corral server died:\n" + server.log_tail()
            assert time.monotonic() < deadline, f"h2 not reconnected within 90 s: {h2_row}"
            await asyncio.sleep(0.5)
    assert server.running, "the Corral server died:\n" + server.log_tail()
    assert "connection to host h2 (" in server.log_path.read_text(errors="replace")
    print(
        f"h2 restored by itself {restored_after:.1f} s after the cutting change, "
        f"reachable again after {back_after:.1f} s"
    )


async def test_a_failure_part_way_restores_at_once(
    agents: HostAgents, lan_bed: MultiHostTestbed
) -> None:
    """The second bridge's uplink is itself a bridge (an administrator's own ``br-lab``),
    which Linux refuses as a bridge port: by then the first bridge (with h1's LAN NIC) and the
    second's VXLAN port were made, and both are undone before the error comes back."""
    h1 = lan_bed.host("h1")
    _sh("ip", "-n", h1.netns, "link", "add", "br-lab", "type", "bridge")
    specs = [
        {"bridge": LAN_BRIDGE, "uplink": h1.lan_nic},
        {"bridge": VXLAN_BRIDGE, "vxlan": _vxlan(lan_bed, "h1"), "uplink": "br-lab"},
    ]
    try:
        with pytest.raises(HostError, match=r"master crlb-0000a001 up` failed: .*; the previous"):
            await _apply(agents, "h1", "bridge-in-bridge", specs)
        assert _corral_links(h1) == set()
        assert "master" not in _links(h1)[h1.lan_nic or ""]
        assert "br-lab" in _links(h1)
    finally:
        _sh("ip", "-n", h1.netns, "link", "del", "br-lab")
    state = await agents.call("h1", "net.state", {}, timeout_s=30)
    assert state["bridges"] == [] and state["pending"] is None
    assert state["history"][-1]["outcome"] == "failed"


async def test_vlans_and_foreign_links_are_refused_before_any_change(
    agents: HostAgents, lan_bed: MultiHostTestbed
) -> None:
    h1 = lan_bed.host("h1")
    vlan = {"bridge": LAN_BRIDGE, "uplink": h1.lan_nic, "vlan": 10}
    state = await agents.call("h1", "net.state", {}, timeout_s=30)
    assert state["vlan_supported"] is False  # this machine's kernel has no 802.1Q
    with pytest.raises(HostError, match=r"no 802.1Q VLAN support .module 8021q.: VLAN 10 on ens4"):
        await _apply(agents, "h1", "vlan", [vlan])
    assert _corral_links(h1) == set()

    _sh("ip", "-n", h1.netns, "link", "add", "crlb-foreign", "type", "bridge")
    try:
        with pytest.raises(HostError, match=r"crlb-foreign exists that Corral's agent did not"):
            await _apply(agents, "h1", "foreign", [{"bridge": "crlb-foreign"}])
        await _apply_confirmed(agents, "h1", "none", [])
        assert "crlb-foreign" in _links(h1)  # never touched
    finally:
        _sh("ip", "-n", h1.netns, "link", "del", "crlb-foreign")
    bad_local = {"bridge": "crlb-x", "vxlan": {**_vxlan(lan_bed, "h1"), "local": "192.0.2.9"}}
    with pytest.raises(HostError, match=r"VXLAN local address 192.0.2.9 of crlb-x is not"):
        await _apply(agents, "h1", "elsewhere", [bad_local])
    with pytest.raises(HostError, match=r"uplink eth9 of crlb-x does not exist"):
        await _apply(agents, "h1", "ghost", [{"bridge": "crlb-x", "uplink": "eth9"}])
    with pytest.raises(HostError, match=r"bridges.0..bridge 'br0' is not a valid name"):
        await _apply(agents, "h1", "bad", [{"bridge": "br0"}])
