"""The private libvirtd is isolated and cleans up after itself and after a crashed run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import libvirt
import pytest

from corral.testbed.guest_domains import guest_domain_xml
from corral.testbed.guest_images import KernelGuest
from corral.testbed.private_libvirtd import PrivateLibvirtd

pytestmark = pytest.mark.integration


def test_daemon_has_its_own_network_and_mounts(private_libvirtd: PrivateLibvirtd) -> None:
    links = subprocess.run(
        private_libvirtd.inside_command(["ip", "-o", "link", "show"]),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    names = [line.split(":")[1].strip().split("@")[0] for line in links]
    assert names[0] == "lo" and ("state UNKNOWN" in links[0] or "UP" in links[0])
    # Besides loopback only the bridges of the daemon's own networks (tests before this one
    # may have made Corral's NAT network in it): none of the machine's interfaces.
    conn = libvirt.open(private_libvirtd.uri)
    try:
        bridges = {n.bridgeName() for n in conn.listAllNetworks() if n.isActive()}
    finally:
        conn.close()
    assert set(names[1:]) <= bridges, (names, bridges)
    # The bind mounts exist only inside: the test process's own mount table has none of them.
    assert str(private_libvirtd.base) not in Path("/proc/self/mountinfo").read_text()
    # The machine's own networks, pools and domains under /etc/libvirt are not copied in.
    # (The session daemon is shared: other tests may have made Corral's own pool and network.)
    system = {
        p.stem for d in ("storage", "qemu/networks") for p in Path("/etc/libvirt", d).glob("*.xml")
    }
    conn = libvirt.open(private_libvirtd.uri)
    try:
        made = {n.name() for n in conn.listAllNetworks()} | {
            p.name() for p in conn.listAllStoragePools()
        }
    finally:
        conn.close()
    assert made <= {"corral", "corral-nat"}
    assert not made & (system - {"corral", "corral-nat"})


def test_start_on_a_crashed_base_dir_kills_the_leftovers(
    private_libvirtd: PrivateLibvirtd, kernel_guest: KernelGuest, tmp_path: Path
) -> None:
    base = tmp_path / "crashed"
    # Share the session daemon's QEMU capabilities cache so this daemon skips the ~4 s probe.
    crashed = PrivateLibvirtd(base, shared_cache=private_libvirtd.cache)
    crashed.start()
    conn = libvirt.open(crashed.uri)
    conn.createXML(guest_domain_xml("leftover", kernel_guest), 0)
    conn.close()
    qemu_pid = int(crashed.host_path("/run/libvirt/qemu/leftover.pid").read_text())
    old_holder = crashed.holder_pid
    assert old_holder is not None
    # The "crash": the object is forgotten without stop(); a new one starts on the same base.
    fresh = PrivateLibvirtd(base, shared_cache=private_libvirtd.cache)
    try:
        fresh.start()
        assert _state(qemu_pid) in ("gone", "Z")
        assert fresh.holder_pid not in (None, old_holder)
        conn = libvirt.open(fresh.uri)
        assert conn.listAllDomains() == []
        conn.close()
    finally:
        fresh.stop()
        crashed.stop()  # reaps its holder process; nothing else is left to do
    assert fresh.holder_pid is None
    fresh.stop()  # idempotent


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return "gone"
