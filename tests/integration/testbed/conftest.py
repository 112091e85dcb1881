"""Fixtures for the testbed's integration tests (the integrator moves them to tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from corral.testbed.guest_images import DiskGuest, KernelGuest, build_disk_guest, build_kernel_guest
from corral.testbed.private_libvirtd import PrivateLibvirtd

GUEST_BUILD_DIR = Path(__file__).resolve().parents[3] / "build" / "guests"


@pytest.fixture(scope="session")
def private_libvirtd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateLibvirtd]:
    daemon = PrivateLibvirtd(tmp_path_factory.mktemp("libvirtd"))
    daemon.start()
    yield daemon
    daemon.stop()


@pytest.fixture(scope="session")
def guest_build_dir() -> Path:
    return GUEST_BUILD_DIR


@pytest.fixture(scope="session")
def kernel_guest(guest_build_dir: Path) -> KernelGuest:
    return build_kernel_guest(guest_build_dir)


@pytest.fixture(scope="session")
def disk_guest(guest_build_dir: Path) -> DiskGuest:
    return build_disk_guest(guest_build_dir)


@pytest.fixture
def conn(private_libvirtd: PrivateLibvirtd) -> Iterator[libvirt.virConnect]:
    connection = libvirt.open(private_libvirtd.uri)
    yield connection
    connection.close()
