"""A real cloud-init guest: a minimal Debian bookworm from Debian's packages, cached on disk.

Made with ``mmdebstrap`` from the machine's own apt sources (no image download): systemd,
``cloud-init``, ``openssh-server``, ``ifupdown`` (what cloud-init 22.4 renders network config
version 2 to on Debian: its ``eni`` renderer) and the kernel behind ``linux-image-cloud-amd64``,
without recommends, documentation or locales.

``disk`` is a qcow2 that **boots by itself**, like a distribution's cloud image, so it can be
imported as a template: an MBR, a small FAT partition with syslinux, the kernel and the
initramfs (:func:`corral.testbed._bootdisk.build_root_disk`; no boot loader can be installed
into an ext4 file system without mounting it), then the ext4 root partition that
``mkfs.ext4 -d`` fills from the tree at its offset, nothing mounted (no loop devices here).
cloud-init's growpart and resizefs (``cloud-guest-utils``) grow it when a VM's disk is larger.
``kernel``, ``initrd`` and ``cmdline`` (the ones the kernel package installed inside the tree,
the root found by its label) also allow direct kernel boot of the same disk, which skips
firmware and loader under TCG.

Baked in for tests (``/etc/cloud/cloud.cfg.d/90_corral.cfg``): cloud-init only looks for a
NoCloud seed (``datasource_list: [NoCloud, None]``: it never waits for a network metadata
service), generates only an ed25519 SSH host key (RSA is slow under TCG) and keeps the C.UTF-8
locale (no ``locales`` package). The image holds no SSH host keys and an empty machine-id, so
every VM made from it gets its own.

Debian's cloud kernel has no AHCI driver: a CD-ROM on SATA (Corral's default bus on x86) is
invisible to it. Attach the seed on SCSI (virtio-scsi) — :func:`cloud_domain_xml` does — or as a
virtio disk.

Idempotent like :mod:`corral.testbed.guest_images`: ``stamp.json`` records the package versions
and a digest of the recipe, a file lock makes concurrent builders wait. CLI:
``python -m corral.testbed.cloud_guest build build/guests`` (writes ``build/guests/cloud``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from corral.errors import HostError
from corral.testbed import _debian
from corral.testbed import guest_images as _images
from corral.testbed._bootdisk import build_root_disk
from corral.testbed.guest_domains import serial_log_path

__all__ = [
    "CLOUD_CMDLINE",
    "CLOUD_PACKAGES",
    "ROOT_LABEL",
    "CloudGuest",
    "build_cloud_guest",
    "cloud_domain_xml",
]

SUITE = "bookworm"
ROOT_LABEL = "cloudroot"
CLOUD_CMDLINE = f"console=tty0 console=ttyS0 root=LABEL={ROOT_LABEL} rw"
KERNEL_METAPACKAGE = "linux-image-cloud-amd64"
CLOUD_PACKAGES = [
    "systemd-sysv",
    "udev",
    "cloud-init",
    "openssh-server",
    "ifupdown",
    "isc-dhcp-client",
    "iproute2",
    "sudo",
    "netbase",
    # growpart and resize2fs: cloud-init grows the root partition and file system to the disk.
    "cloud-guest-utils",
    KERNEL_METAPACKAGE,
]
#: The packages whose versions the stamp records (a new one of any means a rebuild).
_VERSIONED = ["cloud-init", "openssh-server", "systemd", "ifupdown", "cloud-guest-utils"]
#: The disk: a 64 MiB boot partition, the rest is the root file system.
DISK_MIB = 2048
CLOUD_CFG = """\
# Corral's test guest: a NoCloud seed (a cidata CD-ROM) or nothing; never a network metadata
# service. ed25519 host keys only (RSA generation is slow under TCG); C.UTF-8 needs no locales.
datasource_list: [ NoCloud, None ]
ssh_genkeytypes: [ ed25519 ]
locale: C.UTF-8
"""
FSTAB = f"LABEL={ROOT_LABEL} / ext4 rw,errors=remount-ro 0 1\n"
#: Units that only cost boot time in a short-lived test VM.
MASKED_UNITS = ["apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_reap.service"]
_DPKG_EXCLUDES = [
    "/usr/share/man/*",
    "/usr/share/locale/*",
    "/usr/share/doc/*",
    "/usr/share/info/*",
]
# Bump when the build steps change in a way the recorded inputs do not capture.
RECIPE_VERSION = 2


@dataclass(frozen=True)
class CloudGuest:
    """A self-booting qcow2 (give each domain an overlay: :func:`guest_images.make_overlay`),
    and its kernel, initramfs and command line for direct kernel boot."""

    disk: Path
    kernel: Path
    initrd: Path
    cmdline: str


def _progress(message: str) -> None:
    print(f"cloud_guest: {message}", file=sys.stderr, flush=True)


def _recipe() -> str:
    return _images._digest(
        str(RECIPE_VERSION),
        " ".join(CLOUD_PACKAGES),
        CLOUD_CFG,
        FSTAB,
        " ".join(MASKED_UNITS),
        " ".join(_DPKG_EXCLUDES),
        str(DISK_MIB),
    )


def _inputs() -> dict[str, str]:
    kernel_pkg = _debian.real_package(KERNEL_METAPACKAGE)
    versions = _debian.candidate_versions([kernel_pkg, *_VERSIONED])
    return {
        "kernel_package": kernel_pkg,
        **{f"{name}_version": versions[name] for name in [kernel_pkg, *_VERSIONED]},
        "recipe": _recipe(),
    }


def apt_sources() -> list[Path]:
    """The machine's apt source files for Debian itself (third-party ones are left out)."""
    candidates = [Path("/etc/apt/sources.list")]
    candidates += sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    candidates += sorted(Path("/etc/apt/sources.list.d").glob("*.list"))
    found = [path for path in candidates if path.is_file() and _names_debian(path.read_text())]
    if not found:
        raise HostError("no apt source file names a Debian mirror: cannot build the cloud guest")
    return found


def _names_debian(text: str) -> bool:
    return "deb.debian.org" in text or "snapshot.debian.org" in text


def _bootstrap(tree: Path) -> None:
    """mmdebstrap the root tree (as root: its ``root`` mode, plain chroot)."""
    command = [
        "mmdebstrap",
        "--variant=apt",
        "--mode=root",
        # The machine's mirror may be a dated snapshot: its Release files look expired.
        '--aptopt=Acquire::Check-Valid-Until "false"',
        *(f"--dpkgopt=path-exclude={pattern}" for pattern in _DPKG_EXCLUDES),
        f"--include={','.join(CLOUD_PACKAGES)}",
        SUITE,
        str(tree),
        *(str(path) for path in apt_sources()),
    ]
    _debian.run(command)


def _configure(tree: Path) -> None:
    """What makes the tree a test guest; no SSH host keys and no machine-id are left in it."""
    (tree / "etc/cloud/cloud.cfg.d/90_corral.cfg").write_text(CLOUD_CFG)
    (tree / "etc/fstab").write_text(FSTAB)
    (tree / "etc/hostname").write_text("localhost\n")
    (tree / "etc/machine-id").write_text("")
    for key in (tree / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    for unit in MASKED_UNITS:
        link = tree / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")


def _boot_file(tree: Path, pattern: str) -> Path:
    found = sorted((tree / "boot").glob(pattern))
    if not found:
        raise HostError(f"the cloud guest's tree has no /boot/{pattern}: did the kernel install?")
    return found[-1]


def _pack(tree: Path, work: Path, guest: CloudGuest) -> None:
    guest.disk.parent.mkdir(parents=True, exist_ok=True)
    for src, dst in (
        (_boot_file(tree, "vmlinuz-*"), guest.kernel),
        (_boot_file(tree, "initrd.img-*"), guest.initrd),
    ):
        tmp = dst.with_name(dst.name + ".tmp")
        shutil.copyfile(src, tmp)
        tmp.replace(dst)
    boot = (guest.kernel, guest.initrd, guest.cmdline)
    build_root_disk(boot, tree, ROOT_LABEL, guest.disk, work / "disk", size_mib=DISK_MIB)


def _build(build_dir: Path, guest: CloudGuest) -> None:
    work = build_dir / "work-cloud"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.monotonic()
    _progress(f"mmdebstrap {SUITE} with {', '.join(CLOUD_PACKAGES)} (about a minute)")
    _bootstrap(work / "root")
    _configure(work / "root")
    _progress("packing the root file system (mkfs.ext4 -d, qcow2)")
    _pack(work / "root", work, guest)
    shutil.rmtree(work)
    _progress(f"cloud guest ready in {guest.disk.parent} ({time.monotonic() - started:.0f} s)")


def build_cloud_guest(build_dir: Path = _images.DEFAULT_BUILD_DIR) -> CloudGuest:
    """Build (or reuse) the cloud-init guest under ``build_dir/cloud``."""
    out = build_dir.resolve() / "cloud"
    guest = CloudGuest(out / "root.qcow2", out / "vmlinuz", out / "initrd.img", CLOUD_CMDLINE)
    stamp = out / "stamp.json"
    # A lock of its own: this build takes a minute, the other guests need not wait for it.
    with _images._locked(out):
        recorded = _images._read_stamp(stamp, [guest.disk, guest.kernel, guest.initrd])
        fingerprint = _images._apt_lists_fingerprint()
        if (
            recorded is not None
            and recorded.get("apt_lists") == fingerprint
            and recorded.get("recipe") == _recipe()
        ):
            return guest
        inputs = _inputs()
        if recorded is None or {k: v for k, v in recorded.items() if k != "apt_lists"} != inputs:
            _build(build_dir.resolve(), guest)
        _images._write_stamp(stamp, {**inputs, "apt_lists": fingerprint})
    return guest


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    child = etree.SubElement(parent, tag, attrs)
    child.text = text
    return child


def cloud_domain_xml(
    name: str,
    guest: CloudGuest,
    disk: Path,
    seed: Path,
    *,
    mac: str,
    kernel_boot: bool = False,
    memory_mib: int = 512,
) -> str:
    """A TCG domain booting ``disk`` (an overlay of ``guest.disk``) by itself, or with
    ``kernel_boot`` by direct kernel boot, with the seed ISO ``seed`` as a CD-ROM on
    virtio-scsi, one user-mode NIC with ``mac`` and the serial console logged to
    :func:`~corral.testbed.guest_domains.serial_log_path`."""
    domain = etree.Element("domain", type="qemu")
    _sub(domain, "name", name)
    _sub(domain, "memory", str(memory_mib), unit="MiB")
    _sub(domain, "vcpu", "1")
    os_el = _sub(domain, "os")
    _sub(os_el, "type", "hvm", arch="x86_64")
    if kernel_boot:
        _sub(os_el, "kernel", str(guest.kernel))
        _sub(os_el, "initrd", str(guest.initrd))
        _sub(os_el, "cmdline", guest.cmdline)
    else:
        _sub(os_el, "boot", dev="hd")
    features = _sub(domain, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    devices = _sub(domain, "devices")
    root = _sub(devices, "disk", type="file", device="disk")
    _sub(root, "driver", name="qemu", type="qcow2")
    _sub(root, "source", file=str(disk))
    _sub(root, "target", dev="vda", bus="virtio")
    _sub(devices, "controller", type="scsi", index="0", model="virtio-scsi")
    cdrom = _sub(devices, "disk", type="file", device="cdrom")
    _sub(cdrom, "driver", name="qemu", type="raw")
    _sub(cdrom, "source", file=str(seed))
    _sub(cdrom, "target", dev="sda", bus="scsi")
    _sub(cdrom, "readonly")
    nic = _sub(devices, "interface", type="user")
    _sub(nic, "mac", address=mac)
    _sub(nic, "model", type="virtio")
    serial = _sub(devices, "serial", type="pty")
    _sub(serial, "log", file=serial_log_path(name), append="off")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="pty")
    _sub(console, "target", type="serial", port="0")
    return etree.tostring(domain, pretty_print=True, encoding="unicode")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m corral.testbed.cloud_guest",
        description="Build the cloud-init test guest from Debian packages (cached).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build (or reuse) BUILD_DIR/cloud")
    build.add_argument("build_dir", type=Path, nargs="?", default=_images.DEFAULT_BUILD_DIR)
    args = parser.parse_args(argv)
    guest = build_cloud_guest(args.build_dir)
    print(f"disk:    {guest.disk}")
    print(f"kernel:  {guest.kernel}")
    print(f"initrd:  {guest.initrd}")
    print(f"cmdline: {guest.cmdline}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
