"""Test guests of other architectures (s390x, aarch64), built from Debian packages like the x86
ones and cached the same way (see :mod:`corral.testbed.guest_images`).

Each is a kernel + initramfs for direct kernel boot, under ``build/guests/<arch>``: the real
kernel package behind ``linux-image-s390x:s390x`` / ``linux-image-arm64:arm64`` and
``busybox-static`` of that architecture, fetched with ``apt-get download`` (the machine needs
``dpkg --add-architecture s390x arm64`` and ``apt-get update``; ``scripts/setup.sh --test`` does
both). Nothing foreign runs on the build machine: the busybox applet links are made by the
guest itself at boot (``busybox --install -s``), and kernel modules built into the kernel
(``modules.builtin``) are simply not loaded.

The guest is the x86 one (:mod:`corral.testbed._guest_init`: heartbeat, shell, canary) with its
serial console on the architecture's device (``ttysclp0``, ``ttyAMA0``) and no VGA console.
Boot to the heartbeat under TCG: s390x ≈ 3 s, aarch64 ≈ 1.5 s (cortex-a57, ``virt``).

CLI: ``python -m corral.testbed.arch_guests build [s390x aarch64] [--build-dir build/guests]``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from corral.errors import HostError
from corral.testbed import _cpio, _debian
from corral.testbed._guest_init import POWER_BUTTON, PROFILE, init_script
from corral.testbed.guest_images import (
    DEFAULT_BUILD_DIR,
    KernelGuest,
    _apt_lists_fingerprint,
    _digest,
    _locked,
    _progress,
    _read_stamp,
    _write_stamp,
)

__all__ = ["RECIPES", "ArchRecipe", "build_arch_guest"]

# Bump when the build steps change in a way the digest of the guest's files does not capture.
RECIPE_VERSION = 1
_COMMON_MODULES = [
    "virtio_blk", "virtio_net", "virtio_scsi", "sd_mod", "virtio_balloon", "virtio_console",
    "virtio_rng",
]  # fmt: skip


@dataclass(frozen=True)
class ArchRecipe:
    """How one architecture's test guest is made."""

    arch: str  # libvirt's name
    debian_arch: str
    kernel_metapackage: str
    console: str
    #: Kernel modules to load at boot (their dependencies are added; built-ins are skipped).
    modules: tuple[str, ...]

    @property
    def cmdline(self) -> str:
        return f"console={self.console}"


RECIPES: dict[str, ArchRecipe] = {
    # virtio-ccw is built into Debian's s390x kernel (CONFIG_S390_GUEST=y).
    "s390x": ArchRecipe("s390x", "s390x", "linux-image-s390x", "ttysclp0", tuple(_COMMON_MODULES)),
    "aarch64": ArchRecipe(
        "aarch64",
        "arm64",
        "linux-image-arm64",
        "ttyAMA0",
        ("virtio_pci", "virtio_mmio", *_COMMON_MODULES),
    ),
}


def _for_console(text: str, console: str) -> str:
    """The x86 guest's script for another console: its serial device, and no VGA console."""
    return text.replace("/dev/ttyS0", f"/dev/{console}").replace("/dev/tty0", "/dev/null")


def guest_init(recipe: ArchRecipe) -> bytes:
    """/init: the applet links first (the build machine cannot run a foreign busybox)."""
    script = _for_console(init_script().decode(), recipe.console)
    head, sep, rest = script.partition("export PATH=/bin\n")
    return (head + sep + "/bin/busybox --install -s /bin\n" + rest).encode()


def _recipe_digest(recipe: ArchRecipe) -> str:
    return _digest(
        str(RECIPE_VERSION),
        guest_init(recipe),
        _for_console(PROFILE, recipe.console),
        _for_console(POWER_BUTTON, recipe.console),
        " ".join(recipe.modules),
    )


def _inputs(recipe: ArchRecipe) -> dict[str, str]:
    qualifier = f":{recipe.debian_arch}"
    kernel = _debian.real_package(recipe.kernel_metapackage + qualifier)
    kernel = kernel if kernel.endswith(qualifier) else kernel + qualifier
    busybox = "busybox-static" + qualifier
    versions = _debian.candidate_versions([kernel, busybox])
    return {
        "kernel_package": kernel,
        "kernel_version": versions[kernel],
        "busybox_package": busybox,
        "busybox_version": versions[busybox],
        "recipe": _recipe_digest(recipe),
    }


def _builtin_modules(kernel_tree: Path) -> set[str]:
    names: set[str] = set()
    for listing in kernel_tree.glob("lib/modules/*/modules.builtin"):
        for line in listing.read_text().splitlines():
            names.add(Path(line).name.removesuffix(".ko").replace("-", "_"))
    return names


def _modules(recipe: ArchRecipe, kernel_tree: Path) -> tuple[dict[str, Path], list[str]]:
    index = _debian.module_index(kernel_tree)
    builtin = _builtin_modules(kernel_tree)
    wanted = []
    for name in recipe.modules:
        if name in index:
            wanted.append(name)
        elif name not in builtin:
            raise HostError(f"kernel module {name} is neither a module nor built into the kernel")
    return index, _debian.module_load_order(index, wanted)


def _entries(recipe: ArchRecipe, busybox_tree: Path, kernel_tree: Path) -> list[_cpio.CpioEntry]:
    index, modules = _modules(recipe, kernel_tree)
    dirs = ["bin", "dev", "etc", "etc/acpi", "etc/acpi/PWRF", "lib", "lib/modules", "proc",
            "sys", "tmp", "root"]  # fmt: skip
    entries = [_cpio.directory(name) for name in dirs]
    entries.append(_cpio.char_device("dev/console", 5, 1))
    entries.append(_cpio.regular("bin/busybox", (busybox_tree / "bin/busybox").read_bytes(), 0o755))
    entries.append(_cpio.symlink("bin/sh", "busybox"))
    entries.append(_cpio.regular("init", guest_init(recipe), 0o755))
    entries.append(_cpio.regular("etc/profile", _for_console(PROFILE, recipe.console).encode()))
    power = _for_console(POWER_BUTTON, recipe.console).encode()
    entries.append(_cpio.regular("etc/acpi/PWRF/00000080", power, 0o755))
    entries.append(_cpio.regular("etc/modules", "".join(f"{m}\n" for m in modules).encode()))
    entries += [_cpio.regular(f"lib/modules/{m}.ko", index[m].read_bytes()) for m in modules]
    return entries


def _build(recipe: ArchRecipe, build_dir: Path, inputs: dict[str, str], out: Path) -> None:
    debs = build_dir / "debs"
    work = build_dir / f"work-{recipe.arch}"
    shutil.rmtree(work, ignore_errors=True)
    _progress(f"fetching {inputs['kernel_package']} {inputs['kernel_version']} and busybox")
    kernel_deb = _debian.fetch(inputs["kernel_package"], inputs["kernel_version"], debs)
    busybox_deb = _debian.fetch(inputs["busybox_package"], inputs["busybox_version"], debs)
    kernel_tree = _debian.extract(kernel_deb, work / "kernel")
    busybox_tree = _debian.extract(busybox_deb, work / "busybox")
    vmlinuz = sorted(kernel_tree.glob("boot/vmlinuz-*"))
    if not vmlinuz:
        raise HostError(f"{kernel_deb.name} holds no boot/vmlinuz-*: is it a kernel image package?")
    _progress(f"packing the {recipe.arch} initramfs")
    initrd = _cpio.gzip_initramfs(_entries(recipe, busybox_tree, kernel_tree))
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(vmlinuz[0], out / "vmlinuz.tmp")
    (out / "vmlinuz.tmp").replace(out / "vmlinuz")
    (out / "initrd.gz.tmp").write_bytes(initrd)
    (out / "initrd.gz.tmp").replace(out / "initrd.gz")
    shutil.rmtree(work)


def build_arch_guest(arch: str, build_dir: Path = DEFAULT_BUILD_DIR) -> KernelGuest:
    """Build (or reuse) the kernel + initramfs guest of ``arch`` under ``build_dir/<arch>``."""
    recipe = RECIPES[arch]
    build_dir = build_dir.resolve()
    out = build_dir / arch
    guest = KernelGuest(out / "vmlinuz", out / "initrd.gz", recipe.cmdline)
    stamp = out / "stamp.json"
    with _locked(build_dir):
        recorded = _read_stamp(stamp, [guest.kernel, guest.initrd])
        fingerprint = _apt_lists_fingerprint()
        if (
            recorded is not None
            and recorded.get("apt_lists") == fingerprint
            and recorded.get("recipe") == _recipe_digest(recipe)
        ):
            return guest
        inputs = _inputs(recipe)
        if recorded is None or {k: v for k, v in recorded.items() if k != "apt_lists"} != inputs:
            _build(recipe, build_dir, inputs, out)
            _progress(f"{arch} guest ready in {out}")
        _write_stamp(stamp, {**inputs, "apt_lists": fingerprint})
    return guest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m corral.testbed.arch_guests",
        description="Build the s390x and aarch64 test guests from Debian packages (cached).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build the guests of the given architectures")
    build.add_argument("arches", nargs="*", metavar="ARCH", help=", ".join(sorted(RECIPES)))
    build.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD_DIR)
    args = parser.parse_args(argv)
    unknown = set(args.arches) - set(RECIPES)
    if unknown:
        parser.error(f"no recipe for {', '.join(sorted(unknown))}: use {', '.join(RECIPES)}")
    for arch in args.arches or sorted(RECIPES):
        guest = build_arch_guest(arch, args.build_dir)
        print(f"{arch}: kernel {guest.kernel} initrd {guest.initrd} cmdline {guest.cmdline}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
