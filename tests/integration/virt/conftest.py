"""A private libvirtd (own mount and network namespaces) and the kernel-boot test guest."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from corral.model.vm import Accelerator
from corral.testbed.private_libvirtd import PrivateLibvirtd
from corral.virt import LibvirtHost
from tests.conftest import LIBVIRT_CACHE


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def virt_libvirtd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateLibvirtd]:
    daemon = PrivateLibvirtd(tmp_path_factory.mktemp("virt-libvirtd"), shared_cache=LIBVIRT_CACHE)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def host(virt_libvirtd: PrivateLibvirtd) -> AsyncIterator[LibvirtHost]:
    h = LibvirtHost("h1", virt_libvirtd.uri, forced_accelerator=Accelerator.TCG, call_timeout=60)
    await h.connect()
    await h.storage.ensure_pool()
    try:
        yield h
    finally:
        await h.close()
