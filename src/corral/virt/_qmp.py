"""QEMU monitor commands through libvirt (``libvirt_qemu``): only what libvirt has no API for."""

from __future__ import annotations

import json

import libvirt
import libvirt_qemu


def reload_vnc_certificates(dom: libvirt.virDomain) -> None:
    """QMP ``display-reload`` with ``tls-certs``: the VNC server re-reads its certificate files
    (after a rotation), without dropping connected clients. libvirt marks the domain tainted
    (a monitor command was used); that is expected (worker thread)."""
    command = {"execute": "display-reload", "arguments": {"type": "vnc", "tls-certs": True}}
    answer = json.loads(libvirt_qemu.qemuMonitorCommand(dom, json.dumps(command), 0))
    if "error" in answer:
        error = answer["error"]
        raise libvirt.libvirtError(f"display-reload: {error.get('desc', error)}")


def migration_error(dom: libvirt.virDomain) -> str | None:
    """QEMU's own words for why the last outgoing migration failed (QMP ``query-migrate``
    keeps ``error-desc`` until the next one), e.g. "Cannot write to TLS channel:
    Input/output error" where libvirt reports only what the destination saw. None when
    QEMU has nothing to say (worker thread)."""
    answer = json.loads(
        libvirt_qemu.qemuMonitorCommand(dom, json.dumps({"execute": "query-migrate"}), 0)
    )
    result = answer.get("return", {})
    if result.get("status") not in ("failed", "cancelled"):
        return None
    desc = result.get("error-desc")
    return str(desc) if desc else None
