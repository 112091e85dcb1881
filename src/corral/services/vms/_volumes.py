"""Naming and sharing rules for the pool volumes that hold VM disks."""

from __future__ import annotations

from collections.abc import Iterable

from corral.virt import VolumeRef

GIB = 1024**3


def volume_name(vm: str, disk: str) -> str:
    return f"{vm}-{disk}.qcow2"


def backs_another(vol: VolumeRef, volumes: Iterable[VolumeRef]) -> bool:
    """Whether another volume is a linked clone (qcow2 overlay) on top of ``vol``."""
    return any(v.backing in (vol.path, vol.name) for v in volumes if v is not vol)
