"""Corral's storage pool in libvirt's test driver, changed behind Corral's back (volumes put in
place the way another tool would), for the volume tests of the API and the CLI."""

from __future__ import annotations

from collections.abc import Iterator

import libvirt
import pytest

MIB = 2**20


@pytest.fixture(scope="module")
def pool() -> Iterator[libvirt.virStoragePool]:
    """Corral's pool in the test driver (shared per process)."""
    conn = libvirt.open("test:///default")
    yield conn.storagePoolLookupByName("corral")
    conn.close()


def make_raw_volume(pool: libvirt.virStoragePool, name: str) -> None:
    xml = (
        f"<volume><name>{name}</name><capacity unit='bytes'>{MIB}</capacity>"
        "<target><format type='raw'/></target></volume>"
    )
    pool.createXML(xml, 0)
