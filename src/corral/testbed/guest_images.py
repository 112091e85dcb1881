"""Test guests built from Debian packages only, cached under a build directory.

Test guests and private libvirtd
--------------------------------
Integration tests boot real QEMU guests under TCG (``<domain type='qemu'>``) through a private
libvirtd (:mod:`corral.testbed.private_libvirtd`). The machine has no internet access beyond the
Debian mirror, so the guests are assembled here from ``.deb`` files: the kernel behind
``linux-image-cloud-amd64`` (``apt-get download`` + ``dpkg-deb -x``), ``busybox-static`` as the
whole userland, and a gzip'ed newc initramfs written by :mod:`corral.testbed._cpio`. What the guest
does (boot marker, heartbeat, canary, shell on ttyS0, ACPI power button) is described in
:mod:`corral.testbed._guest_init`.

Two kinds of guest:

* :func:`build_kernel_guest` → :class:`KernelGuest` for direct kernel boot (``<os><kernel>…``);
* :func:`build_disk_guest` → :class:`DiskGuest`, a qcow2 image that boots the same kernel and
  initramfs through SeaBIOS and syslinux (see :mod:`corral.testbed._bootdisk`); its kernel command
  line adds ``corral.bootsrc=disk``;
* :func:`build_iso_guest` → :class:`IsoGuest`, a bootable ISO image of the same kernel and
  initramfs (ISOLINUX, see :mod:`corral.testbed._bootiso`), CD-ROM media for the image library;
  its kernel command line adds ``corral.bootsrc=cdrom``.

QEMU locks images it writes to: give each running domain its own overlay (:func:`make_overlay`).

Builds are idempotent: a ``stamp.json`` beside each output records the package versions and a digest
of the recipe; a second run only asks apt for the candidate versions and returns. A file lock makes
concurrent builders (pytest workers) wait for each other. CLI:
``python -m corral.testbed.guest_images build build/guests``.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from corral.errors import HostError
from corral.testbed import _cpio, _debian
from corral.testbed._bootdisk import build_boot_disk
from corral.testbed._bootiso import ISOLINUX_BANNER, build_boot_iso
from corral.testbed._guest_init import (
    BOOT_MARKER,
    CANARY,
    CANARY_COPIES,
    CANARY_FILE,
    CURSOR_QUERY,
    CURSOR_REPLY,
    GUEST_MODULES,
    HEARTBEAT_RE,
    POWER_BUTTON,
    POWEROFF_MARKER,
    PROFILE,
    SHELL_PROMPT,
    init_script,
)

__all__ = [
    "BOOT_MARKER",
    "CANARY",
    "CANARY_COPIES",
    "CANARY_FILE",
    "CURSOR_QUERY",
    "CURSOR_REPLY",
    "DEFAULT_BUILD_DIR",
    "HEARTBEAT_RE",
    "ISOLINUX_BANNER",
    "KERNEL_CMDLINE",
    "POWEROFF_MARKER",
    "SHELL_PROMPT",
    "DiskGuest",
    "IsoGuest",
    "KernelGuest",
    "build_disk_guest",
    "build_iso_guest",
    "build_kernel_guest",
    "make_overlay",
]

DEFAULT_BUILD_DIR = Path("build/guests")
APT_LISTS = Path("/var/lib/apt/lists")
KERNEL_METAPACKAGE = "linux-image-cloud-amd64"
BUSYBOX_PACKAGE = "busybox-static"
BOOTLOADER_PACKAGES = ["syslinux", "syslinux-common", "mtools"]
ISO_PACKAGES = ["isolinux", "syslinux-common", "genisoimage"]
KERNEL_CMDLINE = "console=tty0 console=ttyS0"
DISK_CMDLINE = KERNEL_CMDLINE + " corral.bootsrc=disk"
ISO_CMDLINE = KERNEL_CMDLINE + " corral.bootsrc=cdrom"
# Bump when the build steps change in a way the digest of the guest's files does not capture.
RECIPE_VERSION = 1


@dataclass(frozen=True)
class KernelGuest:
    """Files for direct kernel boot; ``cmdline`` may be extended (e.g. ``corral.scroll=1``)."""

    kernel: Path
    initrd: Path
    cmdline: str


@dataclass(frozen=True)
class DiskGuest:
    """A qcow2 image with an MBR, syslinux, the kernel and the initramfs."""

    disk: Path


@dataclass(frozen=True)
class IsoGuest:
    """A bootable ISO image (ISOLINUX, the kernel and the initramfs)."""

    iso: Path


def _progress(message: str) -> None:
    print(f"guest_images: {message}", file=sys.stderr, flush=True)


@contextmanager
def _locked(build_dir: Path) -> Iterator[None]:
    build_dir.mkdir(parents=True, exist_ok=True)
    with (build_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _digest(*parts: str | bytes) -> str:
    sha = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        sha.update(len(data).to_bytes(8, "big") + data)
    return sha.hexdigest()[:16]


def _read_stamp(stamp: Path, outputs: list[Path]) -> dict[str, str] | None:
    """The recorded inputs, or None if the stamp or an output is missing or unreadable."""
    if not stamp.is_file() or not all(path.is_file() for path in outputs):
        return None
    try:
        recorded = json.loads(stamp.read_text())
    except ValueError:
        return None
    return recorded if isinstance(recorded, dict) else None


def _write_stamp(stamp: Path, inputs: dict[str, str]) -> None:
    tmp = stamp.with_name(stamp.name + ".tmp")
    tmp.write_text(json.dumps(inputs, indent=2, sort_keys=True) + "\n")
    tmp.replace(stamp)


def _apt_lists_fingerprint() -> str:
    """Changes whenever ``apt-get update`` changes what apt knows (cheap: only stat calls)."""
    lists = APT_LISTS
    if not lists.is_dir():
        return "no-apt-lists"
    files = sorted(p for p in lists.iterdir() if p.is_file() and p.name != "lock")
    return _digest(*(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files))


def _kernel_recipe() -> str:
    return _digest(
        str(RECIPE_VERSION), init_script(), PROFILE, POWER_BUTTON, " ".join(GUEST_MODULES)
    )


def _kernel_inputs() -> dict[str, str]:
    # apt-cache takes ~0.5 s per call here, so this runs only when the apt lists changed.
    kernel_pkg = _debian.real_package(KERNEL_METAPACKAGE)
    versions = _debian.candidate_versions([kernel_pkg, BUSYBOX_PACKAGE])
    return {
        "kernel_package": kernel_pkg,
        "kernel_version": versions[kernel_pkg],
        "busybox_version": versions[BUSYBOX_PACKAGE],
        "recipe": _kernel_recipe(),
    }


def _rootfs_entries(busybox_tree: Path, kernel_tree: Path) -> list[_cpio.CpioEntry]:
    """Everything in the initramfs, parents before children."""
    busybox = busybox_tree / "bin" / "busybox"
    applets = _debian.run([str(busybox), "--list"]).split()
    index = _debian.module_index(kernel_tree)
    modules = _debian.module_load_order(index, GUEST_MODULES)
    entries = [
        _cpio.directory(name)
        for name in ("bin", "dev", "etc", "etc/acpi", "etc/acpi/PWRF", "lib", "lib/modules")
    ]
    entries += [_cpio.directory(name) for name in ("proc", "sys", "tmp", "root")]
    # The kernel opens /dev/console before /init runs and before devtmpfs is mounted.
    entries.append(_cpio.char_device("dev/console", 5, 1))
    entries.append(_cpio.regular("bin/busybox", busybox.read_bytes(), 0o755))
    entries += [
        _cpio.symlink(f"bin/{name}", "busybox") for name in sorted(set(applets) - {"busybox"})
    ]
    entries.append(_cpio.regular("init", init_script(), 0o755))
    entries.append(_cpio.regular("etc/profile", PROFILE.encode()))
    entries.append(_cpio.regular("etc/acpi/PWRF/00000080", POWER_BUTTON.encode(), 0o755))
    entries.append(_cpio.regular("etc/modules", "".join(f"{m}\n" for m in modules).encode()))
    entries += [
        _cpio.regular(f"lib/modules/{name}.ko", index[name].read_bytes()) for name in modules
    ]
    return entries


def _build_kernel_files(build_dir: Path, inputs: dict[str, str], out: Path) -> None:
    debs = build_dir / "debs"
    work = build_dir / "work-kernel"
    shutil.rmtree(work, ignore_errors=True)
    _progress(f"fetching {inputs['kernel_package']} {inputs['kernel_version']} and busybox")
    kernel_deb = _debian.fetch(inputs["kernel_package"], inputs["kernel_version"], debs)
    busybox_deb = _debian.fetch(BUSYBOX_PACKAGE, inputs["busybox_version"], debs)
    _progress("unpacking packages")
    kernel_tree = _debian.extract(kernel_deb, work / "kernel")
    busybox_tree = _debian.extract(busybox_deb, work / "busybox")
    vmlinuz = sorted(kernel_tree.glob("boot/vmlinuz-*"))
    if not vmlinuz:
        raise HostError(f"{kernel_deb.name} holds no boot/vmlinuz-*: is it a kernel image package?")
    _progress("packing the initramfs")
    initrd = _cpio.gzip_initramfs(_rootfs_entries(busybox_tree, kernel_tree))
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(vmlinuz[0], out / "vmlinuz.tmp")
    (out / "vmlinuz.tmp").replace(out / "vmlinuz")
    (out / "initrd.gz.tmp").write_bytes(initrd)
    (out / "initrd.gz.tmp").replace(out / "initrd.gz")
    shutil.rmtree(work)


def build_kernel_guest(build_dir: Path = DEFAULT_BUILD_DIR) -> KernelGuest:
    """Build (or reuse) the kernel + initramfs guest under ``build_dir/kernel``."""
    build_dir = build_dir.resolve()
    out = build_dir / "kernel"
    guest = KernelGuest(out / "vmlinuz", out / "initrd.gz", KERNEL_CMDLINE)
    stamp = out / "stamp.json"
    with _locked(build_dir):
        recorded = _read_stamp(stamp, [guest.kernel, guest.initrd])
        fingerprint = _apt_lists_fingerprint()
        if (
            recorded is not None
            and recorded.get("apt_lists") == fingerprint
            and recorded.get("recipe") == _kernel_recipe()
        ):
            return guest
        inputs = _kernel_inputs()
        if recorded is None or {k: v for k, v in recorded.items() if k != "apt_lists"} != inputs:
            _build_kernel_files(build_dir, inputs, out)
            _progress(f"kernel guest ready in {out}")
        _write_stamp(stamp, {**inputs, "apt_lists": fingerprint})
    return guest


def _disk_inputs(kernel_stamp: Path) -> dict[str, str]:
    versions = _debian.run(
        ["dpkg-query", "-W", "-f", "${Package}=${Version} ", *BOOTLOADER_PACKAGES]
    )
    # The kernel stamp's apt_lists entry changes without the kernel guest changing: leave it out.
    kernel_inputs = json.loads(kernel_stamp.read_text())
    kernel_inputs.pop("apt_lists", None)
    return {
        "kernel_guest": _digest(json.dumps(kernel_inputs, sort_keys=True)),
        "bootloader": versions.strip(),
        "recipe": _digest(str(RECIPE_VERSION), DISK_CMDLINE),
    }


def build_disk_guest(build_dir: Path = DEFAULT_BUILD_DIR) -> DiskGuest:
    """Build (or reuse) the bootable qcow2 image under ``build_dir/disk``."""
    build_dir = build_dir.resolve()
    kernel = build_kernel_guest(build_dir)
    out = build_dir / "disk"
    guest = DiskGuest(out / "disk.qcow2")
    with _locked(build_dir):
        inputs = _disk_inputs(kernel.kernel.parent / "stamp.json")
        stamp = out / "stamp.json"
        if _read_stamp(stamp, [guest.disk]) != inputs:
            _progress("building the bootable disk image (syslinux, FAT, qcow2)")
            work = build_dir / "work-disk"
            shutil.rmtree(work, ignore_errors=True)
            out.mkdir(parents=True, exist_ok=True)
            build_boot_disk(kernel.kernel, kernel.initrd, DISK_CMDLINE, guest.disk, work)
            shutil.rmtree(work)
            _write_stamp(stamp, inputs)
            _progress(f"disk guest ready in {out}")
    return guest


def build_iso_guest(build_dir: Path = DEFAULT_BUILD_DIR) -> IsoGuest:
    """Build (or reuse) the bootable ISO image under ``build_dir/iso``."""
    build_dir = build_dir.resolve()
    kernel = build_kernel_guest(build_dir)
    out = build_dir / "iso"
    guest = IsoGuest(out / "boot.iso")
    with _locked(build_dir):
        inputs = _disk_inputs(kernel.kernel.parent / "stamp.json")
        inputs["bootloader"] = _debian.run(
            ["dpkg-query", "-W", "-f", "${Package}=${Version} ", *ISO_PACKAGES]
        ).strip()
        inputs["recipe"] = _digest(str(RECIPE_VERSION), ISO_CMDLINE, "iso")
        stamp = out / "stamp.json"
        if _read_stamp(stamp, [guest.iso]) != inputs:
            _progress("building the bootable ISO image (ISOLINUX, genisoimage)")
            work = build_dir / "work-iso"
            shutil.rmtree(work, ignore_errors=True)
            out.mkdir(parents=True, exist_ok=True)
            build_boot_iso(kernel.kernel, kernel.initrd, ISO_CMDLINE, guest.iso, work)
            shutil.rmtree(work)
            _write_stamp(stamp, inputs)
            _progress(f"ISO guest ready in {out}")
    return guest


def make_overlay(base: Path, overlay: Path) -> Path:
    """A qcow2 overlay backed by ``base``, so each domain writes (and locks) its own file."""
    overlay.parent.mkdir(parents=True, exist_ok=True)
    _debian.run(
        [
            "qemu-img",
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            "qcow2",
            "-b",
            str(base.resolve()),
            str(overlay),
        ]
    )
    return overlay.resolve()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m corral.testbed.guest_images",
        description="Build the test guests from Debian packages (cached; a rebuild is a no-op).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser(
        "build", help="build the kernel+initramfs guest, the disk guest and the ISO guest"
    )
    build.add_argument("build_dir", type=Path, nargs="?", default=DEFAULT_BUILD_DIR)
    args = parser.parse_args(argv)
    kernel = build_kernel_guest(args.build_dir)
    disk = build_disk_guest(args.build_dir)
    iso = build_iso_guest(args.build_dir)
    print(f"kernel:  {kernel.kernel}")
    print(f"initrd:  {kernel.initrd}")
    print(f"cmdline: {kernel.cmdline}")
    print(f"disk:    {disk.disk}")
    print(f"iso:     {iso.iso}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
