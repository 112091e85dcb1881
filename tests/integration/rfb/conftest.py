"""Fixtures: a real QEMU (TCG) running Corral's busybox test guest, with VNC and QMP sockets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.testbed.guest_images import build_kernel_guest
from tests.integration.rfb._qemu import qemu_vnc

BUILD_DIR = Path(__file__).resolve().parents[3] / "build" / "guests"


@pytest.fixture(scope="session")
def kernel_guest_args() -> list[str]:
    guest = build_kernel_guest(BUILD_DIR)
    return ["-kernel", str(guest.kernel), "-initrd", str(guest.initrd), "-append", guest.cmdline]


@pytest.fixture(scope="module")
def qemu_guest(
    tmp_path_factory: pytest.TempPathFactory, kernel_guest_args: list[str]
) -> Iterator[tuple[Path, Path]]:
    """(VNC socket, QMP socket) of a running guest printing a heartbeat on its VGA console."""
    with qemu_vnc(tmp_path_factory.mktemp("qemu"), kernel_guest_args) as sockets:
        yield sockets
