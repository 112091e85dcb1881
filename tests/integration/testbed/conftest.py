"""The testbed's tests use the shared fixtures of tests/conftest.py (private_libvirtd, conn,
kernel_guest, disk_guest); this adds only where those guests are built."""

from __future__ import annotations

from pathlib import Path

import pytest

GUEST_BUILD_DIR = Path(__file__).resolve().parents[3] / "build" / "guests"


@pytest.fixture(scope="session")
def guest_build_dir() -> Path:
    return GUEST_BUILD_DIR
