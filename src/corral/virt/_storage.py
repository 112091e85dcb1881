"""Corral's directory pool and its volumes (blocking calls; run in worker threads)."""

from __future__ import annotations

import contextlib
import logging
import posixpath

import libvirt
from lxml import etree

from corral.errors import Conflict, InsufficientResources, InvalidRequest, NotFound
from corral.virt._probe import HEAD_BYTES, QCOW2_MAGIC, check_qcow2
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
    return volume_refs(vols)


def volume_refs(vols: list[libvirt.virStorageVol]) -> list[VolumeRef]:
    """The volumes still there, by name. One deleted between the listing and reading it (by
    another task or instance: resumers cleaning up after a dead instance delete volumes at
    once) is left out; failing the whole listing left their clean-ups half done."""
    refs = []
    for vol in vols:
        try:
            refs.append(volume_ref(vol))
        except libvirt.libvirtError as err:
            if err.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_VOL:
                raise
    return sorted(refs, key=lambda v: v.name)


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


def create_blank(
    pool: libvirt.virStoragePool, name: str, size_bytes: int, fmt: str = "qcow2"
) -> VolumeRef:
    check_new(pool, name, size_bytes)
    return volume_ref(pool.createXML(volume_xml(name, size_bytes, fmt), 0))


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
    base_ref = checked_ref(conn, pool, base_vol, f"base image {base}")
    check_new(pool, name, 0)
    xml = volume_xml(
        name,
        base_ref.capacity_bytes,
        "qcow2",
        backing_path=base_ref.path,
        backing_format=base_ref.format,
    )
    return volume_ref(pool.createXML(xml, 0))


#: How deep a chain of backing volumes ``checked_ref`` follows (Corral's clones of clones are
#: a few levels; a forged chain is not followed for ever).
_MAX_CHAIN = 16


def checked_ref(
    conn: libvirt.virConnect, pool: libvirt.virStoragePool, vol: libvirt.virStorageVol, label: str
) -> VolumeRef:
    """``vol``, about to be handed to a guest (the base of a linked clone, a disk to attach),
    once its contents pass the rules that images entering the library pass: where libvirt reads
    it as qcow2, no external data file, no corrupt mark, no unknown incompatible feature, and
    every backing file a volume of this pool, checked the same way. (A pool volume need not
    have entered through an upload: a guest writes its serial log into the pool.)"""
    ref = volume_ref(vol)
    if ref.name.endswith(SERIAL_LOG_SUFFIX):
        raise InvalidRequest(f"{label} is a serial log, not a disk image")
    current, pool_dir = ref, _pool_dir(pool)
    for _ in range(_MAX_CHAIN):
        if current.format == "qcow2":
            head = read_head(conn, vol, HEAD_BYTES)
            if head.startswith(QCOW2_MAGIC):
                check_qcow2(head, label)
        if not current.backing:
            return ref
        if posixpath.dirname(current.backing) != pool_dir:
            raise InvalidRequest(
                f"{label} stands on {current.backing!r}, which is not a volume of Corral's pool: "
                "only images of the library and volumes of the pool can be used"
            )
        try:
            vol = conn.storageVolLookupByPath(current.backing)
        except libvirt.libvirtError as err:
            raise NotFound(f"{label}: its backing volume is gone: {err}") from err
        current = volume_ref(vol)
    raise InvalidRequest(f"{label} stands on more than {_MAX_CHAIN} backing volumes")


def _pool_dir(pool: libvirt.virStoragePool) -> str:
    path = etree.fromstring(pool.XMLDesc(0).encode()).findtext("target/path") or ""
    return posixpath.normpath(path)


def read_head(conn: libvirt.virConnect, vol: libvirt.virStorageVol, size: int) -> bytes:
    """The first ``size`` bytes of ``vol`` (fewer when it is shorter), through a libvirt stream
    (remote hosts too); nothing from a driver that cannot stream volumes."""
    stream = conn.newStream(0)
    try:
        vol.download(stream, 0, 0, 0)
    except libvirt.libvirtError as err:
        # libvirt's test driver only (every storage driver of QEMU hosts streams volumes).
        if err.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
            raise
        return b""
    head = b""
    try:
        while len(head) < size:
            data = stream.recv(size - len(head))
            if not isinstance(data, bytes) or not data:
                break
            head += data
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            stream.abort()
    return head[:size]
