"""A volume deleted while a listing reads the pool is left out, not an error (libvirt's test
driver: the listing's volume objects outlive the volume)."""

from __future__ import annotations

import libvirt

from corral.virt._storage import volume_refs
from corral.virt._xmlgen import volume_xml


def test_a_volume_deleted_between_listing_and_reading_is_left_out() -> None:
    conn = libvirt.open("test:///default")
    try:
        pool = conn.storagePoolLookupByName("default-pool")
        for name in ("keep.qcow2", "gone.qcow2"):
            pool.createXML(volume_xml(name, 2**20, "qcow2"), 0)
        listed = pool.listAllVolumes(0)
        pool.storageVolLookupByName("gone.qcow2").delete(0)
        names = [v.name for v in volume_refs(listed)]
        assert "keep.qcow2" in names and "gone.qcow2" not in names
    finally:
        conn.close()
