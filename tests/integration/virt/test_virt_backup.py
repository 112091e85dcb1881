"""Backups of a real TCG guest into a backup store: full, then incremental reading only what
changed (writes made through QEMU's own block layer, so its dirty bitmaps see them), still
incremental after the VM was shut off (started paused for it, shut off again after), and each
restore equal to the disk at that moment."""

from __future__ import annotations

import asyncio
import io
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import libvirt
import libvirt_qemu
import pytest
import pytest_asyncio

from corral.backup.manifest import BackupKind, Consistency, Manifest
from corral.backup.store import BackupStore
from corral.model.vm import BootSpec, DiskSpec, VmSpec, VmState
from corral.services.backups.runner import back_up
from corral.testbed.guest_images import KernelGuest
from corral.testbed.private_libvirtd import PrivateLibvirtd
from corral.virt import LibvirtHost

pytestmark = pytest.mark.asyncio(loop_scope="module")
MIB = 2**20
DISK = 64 * MIB


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def guest(host: LibvirtHost, kernel_guest: KernelGuest) -> AsyncIterator[str]:
    spec = VmSpec(
        name="backed",
        memory_mib=128,
        disks=[DiskSpec(name="root", size_gib=DISK / 2**30)],
        nics=[],
        boot=BootSpec(source="kernel", kernel=str(kernel_guest.kernel),
                      initrd=str(kernel_guest.initrd), cmdline=kernel_guest.cmdline),
    )  # fmt: skip
    vol = await host.storage.create_blank_volume("backed-root.qcow2", DISK)
    record = await host.define_domain(spec, [vol])
    await host.start(record.uuid)
    yield record.uuid
    if (await host.get_domain(record.uuid)).state is not VmState.SHUTOFF:
        await host.destroy(record.uuid)


def _write(libvirtd: PrivateLibvirtd, uuid: str, command: str) -> None:
    """A write into the running disk through QEMU's block layer (HMP ``qemu-io``)."""
    conn = libvirt.open(libvirtd.uri)
    try:
        dom = conn.lookupByUUIDString(uuid)
        hmp = libvirt_qemu.VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP
        blocks = libvirt_qemu.qemuMonitorCommand(dom, "info block", hmp)
        # "Attached to: /machine/peripheral/virtio-disk0/virtio-backend": the guest's device,
        # whose block backend the write goes through (the node alone refuses a second writer).
        [device] = [line.split(":", 1)[1].strip() for line in blocks.splitlines()
                    if line.strip().startswith("Attached to:")]  # fmt: skip
        said = libvirt_qemu.qemuMonitorCommand(dom, f'qemu-io -d {device} "{command}"', hmp)
        # Flushed: qemu-img reads the file itself to compare restores with it.
        said += libvirt_qemu.qemuMonitorCommand(dom, f'qemu-io -d {device} "flush"', hmp)
        # Refusals come back as text; the bytes are checked by what the backups find.
        assert "error" not in said.lower() and "conflict" not in said.lower(), said
    finally:
        conn.close()


async def _disk_now(host: LibvirtHost, libvirtd: PrivateLibvirtd, uuid: str, out: Path) -> bytes:
    record = await host.get_domain(uuid)
    source = libvirtd.host_path(record.disks[0].path)
    command = ["qemu-img", "convert", "-U", "-O", "raw", str(source), str(out)]
    await asyncio.to_thread(subprocess.run, command, check=True)
    return await asyncio.to_thread(out.read_bytes)


def _restored(store: BackupStore, manifest: Manifest) -> bytes:
    out = io.BytesIO()
    store.check_disk(manifest.disks[0])
    store.restore_disk(manifest.disks[0], out)
    return out.getvalue()


async def test_full_incremental_and_offline_backups_restore_the_disk(
    host: LibvirtHost, guest: str, virt_libvirtd: PrivateLibvirtd, tmp_path: Path
) -> None:
    store = BackupStore.create(tmp_path / "store")
    _write(virt_libvirtd, guest, "write -P 0xab 1M 8M")

    full = await back_up(host, await host.get_domain(guest), store)
    assert (full.kind, full.why_full, full.consistency) == (
        BackupKind.FULL,
        None,
        Consistency.CRASH,
    )
    assert 8 * MIB <= full.bytes_read <= 9 * MIB  # the data, not the empty rest
    assert _restored(store, full) == await _disk_now(host, virt_libvirtd, guest, tmp_path / "a")
    assert await host.backups.checkpoints(guest) == [full.checkpoint]

    _write(virt_libvirtd, guest, "write -P 0xcd 20M 4M")
    _write(virt_libvirtd, guest, "write -z 2M 1M")  # zeros over data: a change too
    incremental = await back_up(host, await host.get_domain(guest), store)
    assert incremental.kind is BackupKind.INCREMENTAL and incremental.parent == full.id
    assert incremental.bytes_read <= 1.2 * 4 * MIB
    assert incremental.bytes_new <= 1.2 * 4 * MIB
    now = await _disk_now(host, virt_libvirtd, guest, tmp_path / "b")
    assert now[2 * MIB : 3 * MIB] == bytes(MIB)
    assert _restored(store, incremental) == now
    assert await host.backups.checkpoints(guest) == [incremental.checkpoint]  # the old one went

    # Shut off: still incremental (the bitmap is in the qcow2), and shut off again after.
    await host.destroy(guest)
    offline = await back_up(host, await host.get_domain(guest), store)
    assert (offline.kind, offline.consistency) == (BackupKind.INCREMENTAL, Consistency.OFFLINE)
    assert offline.bytes_read == 0
    assert (await host.get_domain(guest)).state is VmState.SHUTOFF
    assert _restored(store, offline) == now
    # No backup file is left in the pool.
    assert not [v for v in await host.storage.list_volumes() if v.name.startswith(".backup-")]
    assert store.verify().ok
