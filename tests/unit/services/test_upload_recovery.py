"""A manager that died during an upload leaves a partial image: the next start deletes it."""

from __future__ import annotations

from pathlib import Path

import libvirt

from corral import store
from corral.config import Settings
from corral.services.runtime import Services


def _volume(conn: libvirt.virConnect, name: str) -> None:
    xml = (
        f"<volume><name>{name}</name><capacity unit='bytes'>4096</capacity>"
        "<target><format type='raw'/></target></volume>"
    )
    conn.storagePoolLookupByName("corral").createXML(xml, 0)


async def test_an_interrupted_upload_leaves_no_image(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        local_host_name="first",
        local_host_uri="test:///default",
        pool_dir=str(tmp_path / "pool"),
        reconcile_interval_s=3600,
    )
    # The test driver's state lives as long as a connection to it: this one spans both runs.
    conn = libvirt.open("test:///default")
    try:
        first = Services(settings)
        await first.start()  # defines the pool
        await first.stop()
        _volume(conn, "_iso.partial.iso")
        _volume(conn, "_iso.whole.iso")  # another image: kept
        services = Services(settings)
        task = services.db.sync(
            lambda s: store.create_task(
                s, kind="image.upload", target="first/partial.iso", created_by="admin"
            )
        )
        await services.start()
        try:
            pool = conn.storagePoolLookupByName("corral")
            pool.refresh()
            names = set(pool.listVolumes())
            assert "_iso.partial.iso" not in names and "_iso.whole.iso" in names
            failed = await services.tasks.get(task.id)
            assert failed.state == "failed" and "interrupted" in (failed.error or "")
        finally:
            await services.stop()
            conn.storagePoolLookupByName("corral").storageVolLookupByName("_iso.whole.iso").delete(
                0
            )
    finally:
        conn.close()
