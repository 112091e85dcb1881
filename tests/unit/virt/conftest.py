"""Fixtures for the virt unit tests: libvirt's in-process ``test:///default`` driver.

The test driver keeps its state per process (domains defined by one test are still there for the
next), so every test names its domains uniquely. Golden files: run with ``--regen-golden`` (when
this directory is on the command line) or ``CORRAL_REGEN_GOLDEN=1`` to rewrite them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from corral.virt import LibvirtHost

TEST_URI = "test:///default"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--regen-golden", action="store_true", help="rewrite tests/unit/virt/data/*.xml"
    )


@pytest.fixture
def regen_golden(request: pytest.FixtureRequest) -> bool:
    option = bool(request.config.getoption("--regen-golden", default=False))
    return option or os.environ.get("CORRAL_REGEN_GOLDEN") == "1"


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]


@pytest_asyncio.fixture
async def host() -> AsyncIterator[LibvirtHost]:
    h = LibvirtHost("t1", TEST_URI, pool_dir="/corral-test/images")
    await h.connect()
    try:
        yield h
    finally:
        await h.close()
