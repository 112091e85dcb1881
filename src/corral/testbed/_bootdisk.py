"""BIOS-bootable disk images built without loop devices, mounts or root-only tools.

Layout: an MBR (syslinux's ``mbr.bin`` plus one active partition entry) and a FAT partition at
1 MiB made with ``mformat``, holding the kernel, the initramfs and ``syslinux.cfg``; ``syslinux
--offset`` installs ``ldlinux.sys``/``ldlinux.c32`` and the partition's boot sector through mtools.
The raw image is then converted to qcow2. SeaBIOS → mbr.bin → FAT boot sector → ldlinux → kernel.
:func:`build_root_disk` adds a second partition, an ext4 root file system that ``mkfs.ext4 -d``
writes straight into the image at the partition's offset.
"""

from __future__ import annotations

import struct
from pathlib import Path

from corral.testbed._debian import run

MBR_BIN = Path("/usr/lib/syslinux/mbr/mbr.bin")
SECTOR = 512
PART_START = 2048  # sectors: the usual 1 MiB alignment
HEADS, SECTORS_PER_TRACK = 64, 32  # the geometry mformat and the partition entry agree on
FAT16_LBA = 0x0E
LINUX = 0x83
DISK_SIGNATURE = 0xC0BA1100
# mtools refuses images whose geometry looks odd unless told not to check.
_MTOOLS_ENV = {"MTOOLS_SKIP_CHECK": "1"}


def _chs(lba: int) -> bytes:
    cylinder = lba // (HEADS * SECTORS_PER_TRACK)
    if cylinder > 1023:
        return bytes((254, 0xFF, 0xFF))
    head = (lba // SECTORS_PER_TRACK) % HEADS
    sector = lba % SECTORS_PER_TRACK + 1
    return bytes((head, sector | ((cylinder >> 2) & 0xC0), cylinder & 0xFF))


def _entry(active: bool, kind: int, start: int, size: int) -> bytes:
    return (
        (b"\x80" if active else b"\0")
        + _chs(start)
        + bytes((kind,))
        + _chs(start + size - 1)
        + struct.pack("<II", start, size)
    )


def mbr(boot_code: bytes, total_sectors: int, root_sectors: int = 0) -> bytes:
    """The first sector: boot code, disk signature, one active FAT16 partition, 0x55AA.

    With ``root_sectors``, the last that many sectors are a second partition (Linux, 0x83)."""
    if len(boot_code) > 440:
        raise ValueError(f"MBR boot code is {len(boot_code)} bytes, at most 440 fit")
    boot_size = total_sectors - PART_START - root_sectors
    entries = _entry(True, FAT16_LBA, PART_START, boot_size)
    if root_sectors:
        entries += _entry(False, LINUX, PART_START + boot_size, root_sectors)
    sector = boot_code.ljust(440, b"\0") + struct.pack("<IH", DISK_SIGNATURE, 0)
    sector += entries.ljust(64, b"\0") + b"\x55\xaa"
    assert len(sector) == SECTOR
    return sector


def syslinux_cfg(cmdline: str) -> bytes:
    # PROMPT 0: boot the default entry at once; SERIAL mirrors syslinux's banner on ttyS0.
    lines = [
        "SERIAL 0 115200",
        "PROMPT 0",
        "TIMEOUT 1",
        "DEFAULT corral",
        "LABEL corral",
        "  LINUX /vmlinuz",
        "  INITRD /initrd.gz",
        f"  APPEND {cmdline}",
        "",
    ]
    return "\n".join(lines).encode()


def _boot_partition(raw: Path, sectors: int, kernel: Path, initrd: Path, cmdline: str) -> None:
    """FAT at 1 MiB (``sectors`` long) with the kernel, the initramfs and syslinux installed."""
    cfg = raw.with_name("syslinux.cfg")
    cfg.write_bytes(syslinux_cfg(cmdline))
    offset = PART_START * SECTOR
    image = f"{raw}@@{offset}"
    run(
        [
            "mformat",
            "-i",
            image,
            "-T",
            str(sectors),
            "-H",
            str(PART_START),
            "-h",
            str(HEADS),
            "-s",
            str(SECTORS_PER_TRACK),
            "-v",
            "CORRAL",
            "::",
        ],
        env=_MTOOLS_ENV,
    )
    for src, name in ((kernel, "vmlinuz"), (initrd, "initrd.gz"), (cfg, "syslinux.cfg")):
        run(["mcopy", "-i", image, str(src), f"::/{name}"], env=_MTOOLS_ENV)
    run(["syslinux", "--offset", str(offset), "--install", str(raw)])


def _to_qcow2(raw: Path, qcow2: Path) -> None:
    tmp = qcow2.with_name(qcow2.name + ".tmp")
    run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(tmp)])
    tmp.replace(qcow2)
    raw.unlink()


def build_boot_disk(
    kernel: Path, initrd: Path, cmdline: str, qcow2: Path, work: Path, size_mib: int = 48
) -> None:
    """Write a qcow2 image at ``qcow2`` that boots ``kernel`` + ``initrd`` with ``cmdline``."""
    work.mkdir(parents=True, exist_ok=True)
    raw = work / "disk.raw"
    total = size_mib * 1024 * 1024 // SECTOR
    with raw.open("wb") as fh:
        fh.truncate(total * SECTOR)
        fh.write(mbr(MBR_BIN.read_bytes(), total))
    _boot_partition(raw, total - PART_START, kernel, initrd, cmdline)
    _to_qcow2(raw, qcow2)


def build_root_disk(
    boot: tuple[Path, Path, str],
    root_tree: Path,
    root_label: str,
    qcow2: Path,
    work: Path,
    *,
    boot_mib: int = 64,
    size_mib: int = 2048,
) -> None:
    """A qcow2 that boots by itself: the FAT boot partition of :func:`build_boot_disk` with
    ``boot`` (kernel, initramfs, command line), then an ext4 partition filled from
    ``root_tree`` by ``mkfs.ext4 -d`` at its offset (nothing mounted), labelled ``root_label``."""
    kernel, initrd, cmdline = boot
    work.mkdir(parents=True, exist_ok=True)
    raw = work / "disk.raw"
    total = size_mib * 1024 * 1024 // SECTOR
    boot_sectors = boot_mib * 1024 * 1024 // SECTOR
    root_start = PART_START + boot_sectors
    with raw.open("wb") as fh:
        fh.truncate(total * SECTOR)
        fh.write(mbr(MBR_BIN.read_bytes(), total, root_sectors=total - root_start))
    _boot_partition(raw, boot_sectors, kernel, initrd, cmdline)
    root_kib = (total - root_start) * SECTOR // 1024
    run(
        [
            "mkfs.ext4", "-q", "-F", "-b", "4096", "-L", root_label,
            "-E", f"offset={root_start * SECTOR}", "-d", str(root_tree), str(raw), f"{root_kib}k",
        ]
    )  # fmt: skip
    _to_qcow2(raw, qcow2)
