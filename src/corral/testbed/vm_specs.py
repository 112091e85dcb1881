"""VmSpec bodies for the test guests, as the API takes them (shared by tests and benchmarks)."""

from __future__ import annotations

from typing import Any

from corral.testbed.guest_images import KernelGuest


def kernel_vm(
    name: str, guest: KernelGuest, *, disk_gib: float | None = 1, **extra: Any
) -> dict[str, Any]:
    """The busybox test guest booted from kernel+initrd, 256 MiB; with a blank qcow2 disk
    unless ``disk_gib`` is None (internal snapshots need somewhere to live). No NIC unless
    ``extra`` gives ``nics``: the busybox guests never use one, and a NIC on ``nat`` would make
    every test bed host a migration reaches create Corral's NAT network."""
    spec: dict[str, Any] = {
        "name": name,
        "vcpus": 1,
        "memory_mib": 256,
        "boot": {
            "source": "kernel",
            "kernel": str(guest.kernel),
            "initrd": str(guest.initrd),
            "cmdline": guest.cmdline,
        },
        "disks": [{"name": "data", "size_gib": disk_gib}] if disk_gib else [],
        "nics": [],
        **extra,
    }
    return spec
