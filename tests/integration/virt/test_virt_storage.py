"""Corral's storage pool on a real libvirtd: blank volumes, linked clones, imports, resize."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from corral.errors import Cancelled, Conflict, NotFound
from corral.testbed.private_libvirtd import PrivateLibvirtd
from corral.virt import LibvirtHost

pytestmark = pytest.mark.asyncio(loop_scope="module")
MIB = 2**20


async def _run(*argv: str) -> str:
    done = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, check=True)
    return done.stdout


async def test_capabilities(host: LibvirtHost) -> None:
    caps = await host.capabilities()
    assert caps.arch == "x86_64" and caps.cpus >= 1 and caps.memory_mib > 0
    assert caps.qemu_version is not None and caps.libvirt_version.startswith(("9.", "1"))
    assert host.connected


def _meminfo_mib(field: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024
    raise AssertionError(f"{field} not in /proc/meminfo")


async def test_host_memory_is_the_machine_memory(host: LibvirtHost) -> None:
    # libvirt's NUMA cell totals under-count on some machines (5.3 of 23.5 GiB here).
    caps = await host.capabilities()
    total = _meminfo_mib("MemTotal")
    assert abs(caps.memory_mib - total) <= total // 100
    available = _meminfo_mib("MemAvailable")
    assert 0.8 * available <= caps.free_memory_mib <= 1.2 * available + 64
    assert caps.host_uuid is not None and len(caps.host_uuid) == 36
    assert host.libvirt_id == f"uuid:{caps.host_uuid}"


async def test_blank_clone_resize_delete(host: LibvirtHost, virt_libvirtd: PrivateLibvirtd) -> None:
    base = await host.storage.create_blank_volume("base.qcow2", 64 * MIB)
    assert virt_libvirtd.host_path(base.path).is_file()
    with pytest.raises(Conflict):
        await host.storage.create_blank_volume("base.qcow2", MIB)
    clone = await host.storage.create_linked_clone("clone.qcow2", "base.qcow2")
    by_path = await host.storage.create_linked_clone("clone2.qcow2", base.path)
    info = await _run("qemu-img", "info", "-U", str(virt_libvirtd.host_path(clone.path)))
    assert "backing file: " + base.path in info
    assert clone.backing == base.path == by_path.backing
    await host.storage.resize_volume("clone.qcow2", 128 * MIB)
    resized = {v.name: v for v in await host.storage.list_volumes()}["clone.qcow2"]
    assert resized.capacity_bytes == 128 * MIB
    for name in ("clone2.qcow2", "clone.qcow2", "base.qcow2"):
        await host.storage.delete_volume(name)
    assert not await host.storage.volume_exists("base.qcow2")
    with pytest.raises(NotFound):
        await host.storage.delete_volume("base.qcow2")


async def test_import_raw_and_qcow2_with_progress(host: LibvirtHost, tmp_path: Path) -> None:
    raw = tmp_path / "disk.img"
    payload = os.urandom(3 * MIB + 12345)
    raw.write_bytes(payload)
    qcow = tmp_path / "disk.qcow2"
    await _run("qemu-img", "create", "-q", "-f", "qcow2", str(qcow), "32M")
    seen: list[tuple[int, int]] = []
    vol = await host.storage.import_volume(
        "imported.img", raw, progress=lambda d, t: seen.append((d, t)), cancelled=lambda: False
    )
    assert (vol.format, vol.capacity_bytes) == ("raw", len(payload))
    assert seen[0] == (0, len(payload)) and seen[-1] == (len(payload), len(payload))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) >= 4
    vq = await host.storage.import_volume(
        "imported.qcow2", qcow, progress=lambda d, t: None, cancelled=lambda: False
    )
    assert (vq.format, vq.capacity_bytes) == ("qcow2", 32 * MIB)
    await host.storage.delete_volume("imported.img")
    await host.storage.delete_volume("imported.qcow2")


async def test_import_round_trips_bytes(
    host: LibvirtHost, tmp_path: Path, virt_libvirtd: PrivateLibvirtd
) -> None:
    source = tmp_path / "bytes.img"
    payload = os.urandom(MIB + 7)
    source.write_bytes(payload)
    vol = await host.storage.import_volume("bytes.img", source, progress=lambda d, t: None,
                                   cancelled=lambda: False)  # fmt: skip
    assert virt_libvirtd.host_path(vol.path).read_bytes() == payload
    await host.storage.delete_volume("bytes.img")


async def test_cancelled_import_leaves_no_volume(host: LibvirtHost, tmp_path: Path) -> None:
    source = tmp_path / "big.img"
    source.write_bytes(os.urandom(4 * MIB))
    seen: list[int] = []
    with pytest.raises(Cancelled):
        await host.storage.import_volume(
            "cancelled.img", source, progress=lambda d, t: seen.append(d),
            cancelled=lambda: len(seen) >= 2,
        )  # fmt: skip
    assert not await host.storage.volume_exists("cancelled.img")


async def test_nat_network_in_the_private_namespace(
    host: LibvirtHost, virt_libvirtd: PrivateLibvirtd
) -> None:
    assert await host.ensure_nat_network() == "corral-nat"
    assert await host.ensure_nat_network() == "corral-nat"
    info = await _run("virsh", "-c", virt_libvirtd.uri, "net-info", "corral-nat")
    assert "Active:         yes" in info and "Autostart:      yes" in info
