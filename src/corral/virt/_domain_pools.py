"""Directory pools of storage domains (blocking calls; run in worker threads).

Unlike Corral's own pool these are never built: the directory is the administrator's mount,
and a pool that cannot start (no such directory) must fail rather than create an empty one.
"""

from __future__ import annotations

import contextlib
import logging
import posixpath

import libvirt
from lxml import etree

from corral.virt import _storage
from corral.virt._xmlgen import dir_pool_xml, volume_xml

log = logging.getLogger(__name__)


def _find(conn: libvirt.virConnect, name: str) -> libvirt.virStoragePool | None:
    try:
        return conn.storagePoolLookupByName(name)
    except libvirt.libvirtError as err:
        if err.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_POOL:
            raise
    return None


def target_path(pool: libvirt.virStoragePool) -> str:
    path = etree.fromstring(pool.XMLDesc(0).encode()).findtext("target/path") or ""
    return posixpath.normpath(path)


def ensure_dir_pool(conn: libvirt.virConnect, name: str, path: str) -> libvirt.virStoragePool:
    """Pool ``name`` at ``path``, defined (or redefined when it points elsewhere), started and
    autostarted; never built. A pool that fails to start is undefined again."""
    pool = _find(conn, name)
    if pool is not None and target_path(pool) != posixpath.normpath(path):
        undefine(conn, name)
        pool = None
    defined = pool is None
    if pool is None:
        log.info("defining storage pool %s at %s", name, path)
        pool = conn.storagePoolDefineXML(dir_pool_xml(name, path), 0)
    try:
        if not pool.isActive():
            pool.create(0)
        if not pool.autostart():
            pool.setAutostart(1)
    except libvirt.libvirtError:
        if defined:
            with contextlib.suppress(libvirt.libvirtError):
                pool.undefine()
        raise
    return pool


def undefine(conn: libvirt.virConnect, name: str) -> bool:
    """Stop and undefine pool ``name`` (its directory and files stay); False if there was none."""
    pool = _find(conn, name)
    if pool is None:
        return False
    if pool.isActive():
        pool.destroy()
    pool.undefine()
    return True


def read_small(conn: libvirt.virConnect, pool: libvirt.virStoragePool, name: str,
               size: int) -> bytes | None:  # fmt: skip
    """The first ``size`` bytes of volume ``name`` (after a refresh), None if there is none."""
    vol = _storage.find(pool, name)
    return None if vol is None else _storage.read_head(conn, vol, size)


def write_small(conn: libvirt.virConnect, pool: libvirt.virStoragePool, name: str,
                data: bytes) -> None:  # fmt: skip
    """Volume ``name`` holding exactly ``data`` (raw), replacing one of that name."""
    old = _storage.find(pool, name)
    if old is not None:
        old.delete(0)
    vol = pool.createXML(volume_xml(name, len(data), "raw"), 0)
    stream = conn.newStream(0)
    try:
        vol.upload(stream, 0, len(data), 0)
        view = memoryview(data)
        while view:
            view = view[stream.send(bytes(view)) :]
        stream.finish()
    except BaseException:
        with contextlib.suppress(libvirt.libvirtError):
            stream.abort()
        with contextlib.suppress(libvirt.libvirtError):
            vol.delete(0)
        raise


def delete_domain_volume(conn: libvirt.virConnect, path: str, prefix: str) -> str | None:
    """Delete the volume at ``path`` when it is in a pool named ``prefix…`` (a storage
    domain's) and no other volume of that pool stands on it. None when deleted, else why not."""
    try:
        vol = conn.storageVolLookupByPath(path)
    except libvirt.libvirtError:
        return "it is in no storage pool Corral knows"
    pool = vol.storagePoolLookupByVolume()
    if not pool.name().startswith(prefix):
        return "it is in no storage domain"
    others = [_storage.volume_ref(v) for v in pool.listAllVolumes(0) if v.path() != path]
    if any(o.backing == path for o in others):
        return "a linked clone still uses it as its base"
    vol.delete(0)
    return None


def names(conn: libvirt.virConnect, prefix: str) -> list[str]:
    """The pools whose name starts with ``prefix``."""
    return sorted(p.name() for p in conn.listAllStoragePools(0) if p.name().startswith(prefix))
