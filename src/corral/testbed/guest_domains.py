"""Domain XML for the test guests, and bounded waits on what they print.

Tests, benchmarks and ``corral testbed`` share these so every test guest looks the same: TCG
(``<domain type='qemu'>``), ACPI + APIC (without ACPI libvirt passes ``-no-acpi``: no graceful
shutdown, no disk hot-plug), 256 MiB, a serial console on a pty whose output QEMU also writes to a
log file (``append='off'``), VGA and a VNC server on a UNIX socket. No libvirt import here (only
``corral.virt`` imports libvirt): callers hand the XML to their own connection.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from lxml import etree

from corral.errors import OperationTimeout
from corral.testbed.guest_images import DiskGuest, KernelGuest

T = TypeVar("T")


def serial_log_path(name: str) -> str:
    """Where (inside libvirt's view) a domain built here logs its serial console."""
    return f"/var/log/libvirt/qemu/{name}-serial.log"


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    child = etree.SubElement(parent, tag, attrs)
    child.text = text
    return child


def _add_os(domain: etree._Element, guest: KernelGuest | DiskGuest, extra_cmdline: str) -> None:
    os_el = _sub(domain, "os")
    _sub(os_el, "type", "hvm", arch="x86_64")
    if isinstance(guest, KernelGuest):
        _sub(os_el, "kernel", str(guest.kernel))
        _sub(os_el, "initrd", str(guest.initrd))
        _sub(os_el, "cmdline", f"{guest.cmdline} {extra_cmdline}".strip())
    else:
        _sub(os_el, "boot", dev="hd")


def _add_devices(
    domain: etree._Element, name: str, guest: KernelGuest | DiskGuest, disk: Path | None
) -> None:
    devices = _sub(domain, "devices")
    if isinstance(guest, DiskGuest):
        disk_el = _sub(devices, "disk", type="file", device="disk")
        _sub(disk_el, "driver", name="qemu", type="qcow2")
        _sub(disk_el, "source", file=str(disk or guest.disk))
        _sub(disk_el, "target", dev="vda", bus="virtio")
    serial = _sub(devices, "serial", type="pty")
    _sub(serial, "log", file=serial_log_path(name), append="off")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="pty")
    _sub(console, "target", type="serial", port="0")
    graphics = _sub(devices, "graphics", type="vnc")
    _sub(graphics, "listen", type="socket")
    _sub(_sub(devices, "video"), "model", type="vga")


def guest_domain_xml(
    name: str,
    guest: KernelGuest | DiskGuest,
    *,
    memory_mib: int = 256,
    vcpus: int = 1,
    disk: Path | None = None,
    extra_cmdline: str = "",
) -> str:
    """A TCG domain for ``guest``; for a DiskGuest pass ``disk`` (an overlay, see make_overlay).

    ``extra_cmdline`` (e.g. ``corral.scroll=1``) only applies to a KernelGuest: a DiskGuest's
    command line is baked into its syslinux.cfg.
    """
    domain = etree.Element("domain", type="qemu")
    _sub(domain, "name", name)
    _sub(domain, "memory", str(memory_mib), unit="MiB")
    _sub(domain, "vcpu", str(vcpus))
    _add_os(domain, guest, extra_cmdline)
    features = _sub(domain, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    for event, action in (("poweroff", "destroy"), ("reboot", "restart"), ("crash", "destroy")):
        _sub(domain, f"on_{event}", action)
    _add_devices(domain, name, guest, disk)
    return etree.tostring(domain, pretty_print=True, encoding="unicode")


def wait_until(
    probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.1
) -> T:
    """Call ``probe`` until it returns something other than None/False; bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None and result is not False:
            return result
        if time.monotonic() >= deadline:
            raise OperationTimeout(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(interval)


@dataclass
class SerialLog:
    """The serial console log of a guest, as seen by the test process."""

    path: Path

    def read(self) -> bytes:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return b""

    def wait_for(
        self, pattern: bytes | re.Pattern[bytes], timeout: float = 60, start: int = 0
    ) -> re.Match[bytes]:
        """The first match of ``pattern`` at or after byte ``start``; waits at most ``timeout``."""
        regex = re.compile(re.escape(pattern)) if isinstance(pattern, bytes) else pattern

        def probe() -> re.Match[bytes] | None:
            return regex.search(self.read(), start)

        try:
            return wait_until(probe, timeout, f"{regex.pattern!r} in {self.path}")
        except OperationTimeout as exc:
            tail = self.read()[-600:].decode(errors="replace")
            raise OperationTimeout(f"{exc.message}; the log ends with:\n{tail}") from None
