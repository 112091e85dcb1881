"""Building the guests a second time is a no-op (scripts/setup.sh runs it before every test run)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from corral.testbed.cloud_guest import CloudGuest, build_cloud_guest
from corral.testbed.guest_images import DiskGuest, KernelGuest, build_disk_guest

pytestmark = pytest.mark.integration


def test_second_build_reuses_the_outputs(
    guest_build_dir: Path, kernel_guest: KernelGuest, disk_guest: DiskGuest
) -> None:
    outputs = [kernel_guest.kernel, kernel_guest.initrd, disk_guest.disk]
    before = [path.stat().st_mtime_ns for path in outputs]
    started = time.monotonic()
    again = build_disk_guest(guest_build_dir)
    elapsed = time.monotonic() - started
    assert again == disk_guest
    assert [path.stat().st_mtime_ns for path in outputs] == before
    assert elapsed < 1.0, f"a no-op build took {elapsed:.2f} s"


def test_second_cloud_guest_build_reuses_the_outputs(
    guest_build_dir: Path, cloud_guest: CloudGuest
) -> None:
    outputs = [cloud_guest.disk, cloud_guest.kernel, cloud_guest.initrd]
    before = [path.stat().st_mtime_ns for path in outputs]
    started = time.monotonic()
    again = build_cloud_guest(guest_build_dir)
    elapsed = time.monotonic() - started
    assert again == cloud_guest
    assert [path.stat().st_mtime_ns for path in outputs] == before
    assert elapsed < 1.0, f"a no-op build took {elapsed:.2f} s"
