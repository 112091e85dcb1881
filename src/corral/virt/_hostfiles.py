"""A file on a host, seen by that host's libvirt (blocking; run in worker threads).

libvirt has no call that looks at an arbitrary file, but a directory storage pool lists the
files of its directory as volumes. So a file is looked up in the pool that already covers its
directory, else in a *transient* pool made on that directory for the lookup and destroyed right
after (it leaves nothing behind, and nothing but libvirt's own connection is used: no side
channel to the host).
"""

from __future__ import annotations

import posixpath
import threading
import uuid

import libvirt
from lxml import etree

from corral.virt._storage import refresh, volume_ref
from corral.virt._xmlgen import dir_pool_xml
from corral.virt.types import VolumeRef

#: Two lookups in one directory at once would both make a pool on it, and libvirt refuses the
#: second ("Storage source conflict"): lookups take turns (each is a few quick calls).
_TURNS = threading.Lock()


def _target(pool: libvirt.virStoragePool) -> str:
    path = etree.fromstring(pool.XMLDesc(0).encode()).findtext("target/path") or ""
    return posixpath.normpath(path) if path else ""


def _covering(conn: libvirt.virConnect, directory: str) -> libvirt.virStoragePool | None:
    """An active directory-like pool whose target is ``directory``, if the host has one."""
    for pool in conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE):
        if _target(pool) == directory:
            return pool
    return None


def _regular_file(pool: libvirt.virStoragePool, name: str) -> VolumeRef | None:
    try:
        vol = pool.storageVolLookupByName(name)
    except libvirt.libvirtError as err:
        if err.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
            return None
        raise
    kind, _capacity, _allocation = vol.info()
    return volume_ref(vol) if kind == libvirt.VIR_STORAGE_VOL_FILE else None


def find_file(conn: libvirt.virConnect, path: str) -> VolumeRef | None:
    """The regular file ``path`` (absolute, normalised) on the connection's host; None when
    there is none: no such file or directory, or not a regular file."""
    directory, name = posixpath.split(path)
    if not name:
        return None
    with _TURNS:
        pool = _covering(conn, directory)
        if pool is not None:
            refresh(pool)
            return _regular_file(pool, name)
        xml = dir_pool_xml(f"corral-lookup-{uuid.uuid4().hex[:12]}", directory)
        try:
            pool = conn.storagePoolCreateXML(xml, 0)
        except libvirt.libvirtError as err:
            # "cannot open directory …: No such file or directory" (or not a directory).
            if err.get_error_code() == libvirt.VIR_ERR_SYSTEM_ERROR:
                return None
            raise
        try:
            return _regular_file(pool, name)
        finally:
            pool.destroy()  # transient: destroying it removes it
