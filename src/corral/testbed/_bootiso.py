"""A bootable ISO 9660 image (El Torito, no emulation) holding the test guest's kernel and
initramfs, built with Debian's ``isolinux`` and ``genisoimage``: no loop devices, mounts or
root-only tools. SeaBIOS → El Torito → ``isolinux.bin`` → ``ldlinux.c32`` → kernel. The
guest is the one direct kernel boot uses; its command line adds ``corral.bootsrc=cdrom``
and ISOLINUX prints its banner on ttyS0 too (``SERIAL``), so a test sees it booted from CD.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from corral.testbed._debian import run

ISOLINUX_BIN = Path("/usr/lib/ISOLINUX/isolinux.bin")
LDLINUX_C32 = Path("/usr/lib/syslinux/modules/bios/ldlinux.c32")
#: What ISOLINUX prints first on the serial console.
ISOLINUX_BANNER = "ISOLINUX"


def isolinux_cfg(cmdline: str) -> bytes:
    # PROMPT 0: boot the default entry at once; SERIAL mirrors the banner on ttyS0.
    lines = [
        "SERIAL 0 115200",
        "PROMPT 0",
        "TIMEOUT 1",
        "DEFAULT corral",
        "LABEL corral",
        "  KERNEL /vmlinuz",
        "  INITRD /initrd.gz",
        f"  APPEND {cmdline}",
        "",
    ]
    return "\n".join(lines).encode()


def build_boot_iso(kernel: Path, initrd: Path, cmdline: str, iso: Path, work: Path) -> None:
    """Write an ISO image at ``iso`` that boots ``kernel`` + ``initrd`` with ``cmdline``."""
    tree = work / "tree"
    (tree / "isolinux").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ISOLINUX_BIN, tree / "isolinux" / "isolinux.bin")
    shutil.copyfile(LDLINUX_C32, tree / "isolinux" / "ldlinux.c32")
    (tree / "isolinux" / "isolinux.cfg").write_bytes(isolinux_cfg(cmdline))
    shutil.copyfile(kernel, tree / "vmlinuz")
    shutil.copyfile(initrd, tree / "initrd.gz")
    tmp = iso.with_name(iso.name + ".tmp")
    run(
        [
            "genisoimage", "-quiet", "-r", "-J", "-V", "CORRALBOOT",
            "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat",
            "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
            "-o", str(tmp), str(tree),
        ]
    )  # fmt: skip
    tmp.replace(iso)
