"""A BIOS-bootable disk image built without loop devices, mounts or root-only tools.

Layout: an MBR (syslinux's ``mbr.bin`` plus one active partition entry) and a FAT partition at
1 MiB made with ``mformat``, holding the kernel, the initramfs and ``syslinux.cfg``; ``syslinux
--offset`` installs ``ldlinux.sys``/``ldlinux.c32`` and the partition's boot sector through mtools.
The raw image is then converted to qcow2. SeaBIOS → mbr.bin → FAT boot sector → ldlinux → kernel.
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


def mbr(boot_code: bytes, total_sectors: int) -> bytes:
    """The first sector: boot code, disk signature, one active FAT16 partition, 0x55AA."""
    if len(boot_code) > 440:
        raise ValueError(f"MBR boot code is {len(boot_code)} bytes, at most 440 fit")
    size = total_sectors - PART_START
    entry = (
        b"\x80"
        + _chs(PART_START)
        + bytes((FAT16_LBA,))
        + _chs(total_sectors - 1)
        + struct.pack("<II", PART_START, size)
    )
    sector = boot_code.ljust(440, b"\0") + struct.pack("<IH", DISK_SIGNATURE, 0)
    sector += entry + b"\0" * 48 + b"\x55\xaa"
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
    cfg = work / "syslinux.cfg"
    cfg.write_bytes(syslinux_cfg(cmdline))
    offset = PART_START * SECTOR
    image = f"{raw}@@{offset}"
    run(
        [
            "mformat",
            "-i",
            image,
            "-T",
            str(total - PART_START),
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
    tmp = qcow2.with_name(qcow2.name + ".tmp")
    run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(tmp)])
    tmp.replace(qcow2)
    raw.unlink()
