"""Corral's directory pool and its volumes (blocking calls; run in worker threads)."""

from __future__ import annotations

import contextlib
import logging

import libvirt
from lxml import etree

from corral.errors import Conflict, InsufficientResources, NotFound
from corral.virt._xmlgen import dir_pool_xml, volume_xml
from corral.virt.types import VolumeRef

log = logging.getLogger(__name__)

#: Serial logs live in the pool so they can be downloaded; they are not disk images.
SERIAL_LOG_SUFFIX = ".serial.log"


def ensure_pool(conn: libvirt.virConnect, name: str, path: str) -> libvirt.virStoragePool:
    """Look up Corral's pool; define, build, start and autostart it if needed."""
    try:
        pool = conn.storagePoolLookupByName(name)
    except libvirt.libvirtError as err:
        if err.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_POOL:
            raise
        log.info("defining storage pool %s at %s", name, path)
        pool = conn.storagePoolDefineXML(dir_pool_xml(name, path), 0)
        pool.build(libvirt.VIR_STORAGE_POOL_BUILD_NEW)
    if not pool.isActive():
        pool.create(0)
    if not pool.autostart():
        pool.setAutostart(1)
    return pool


def refresh(pool: libvirt.virStoragePool) -> None:
    # Refresh refuses while an upload runs in the pool; the listing is then merely older.
    with contextlib.suppress(libvirt.libvirtError):
        pool.refresh(0)


def volume_ref(vol: libvirt.virStorageVol) -> VolumeRef:
    doc = etree.fromstring(vol.XMLDesc(0).encode())
    _type, capacity, allocation = vol.info()
    return VolumeRef(
        name=vol.name(),
        path=vol.path(),
        format=_attr(doc, "target/format", "raw"),
        capacity_bytes=int(capacity),
        backing=doc.findtext("backingStore/path"),
        allocation_bytes=int(allocation),
    )


def _attr(doc: etree._Element, path: str, default: str) -> str:
    node = doc.find(path)
    return str(node.get("type")) if node is not None and node.get("type") else default


def lookup(pool: libvirt.virStoragePool, name: str) -> libvirt.virStorageVol:
    try:
        return pool.storageVolLookupByName(name)
    except libvirt.libvirtError as err:
        if err.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_VOL:
            raise
    raise NotFound(f"volume {name} does not exist in storage pool {pool.name()}")


def find(pool: libvirt.virStoragePool, name: str) -> libvirt.virStorageVol | None:
    """Volume ``name``, or None. The pool is refreshed only on a miss: a refresh re-reads every
    volume's header, which stole CPU from guests when serial logs were polled through it."""
    for attempt in range(2):
        try:
            return pool.storageVolLookupByName(name)
        except libvirt.libvirtError as err:
            if err.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_VOL:
                raise
        if attempt == 0:
            refresh(pool)
    return None


def exists(pool: libvirt.virStoragePool, name: str) -> bool:
    try:
        lookup(pool, name)
    except NotFound:
        return False
    return True


def list_volumes(pool: libvirt.virStoragePool) -> list[VolumeRef]:
    refresh(pool)
    vols = [v for v in pool.listAllVolumes(0) if not v.name().endswith(SERIAL_LOG_SUFFIX)]
    return sorted((volume_ref(v) for v in vols), key=lambda v: v.name)


def check_new(pool: libvirt.virStoragePool, name: str, size_bytes: int) -> None:
    """Conflict if ``name`` is taken; InsufficientResources if the pool lacks the space."""
    refresh(pool)
    if exists(pool, name):
        raise Conflict(
            f"volume {name} already exists in storage pool {pool.name()}: pick another name"
        )
    available = int(pool.info()[3])
    if size_bytes > available:
        raise InsufficientResources(
            f"storage pool {pool.name()} has {available / 2**30:.1f} GiB free, volume {name} "
            f"needs {size_bytes / 2**30:.1f} GiB: free space or choose a smaller size"
        )


def create_blank(pool: libvirt.virStoragePool, name: str, size_bytes: int) -> VolumeRef:
    check_new(pool, name, size_bytes)
    return volume_ref(pool.createXML(volume_xml(name, size_bytes, "qcow2"), 0))


def create_linked_clone(
    conn: libvirt.virConnect, pool: libvirt.virStoragePool, name: str, base: str
) -> VolumeRef:
    if base.startswith("/"):
        try:
            base_vol = conn.storageVolLookupByPath(base)
        except libvirt.libvirtError as err:
            raise NotFound(f"base image {base} is not a known storage volume: {err}") from err
    else:
        base_vol = lookup(pool, base)
    base_ref = volume_ref(base_vol)
    check_new(pool, name, 0)
    xml = volume_xml(
        name,
        base_ref.capacity_bytes,
        "qcow2",
        backing_path=base_ref.path,
        backing_format=base_ref.format,
    )
    return volume_ref(pool.createXML(xml, 0))
