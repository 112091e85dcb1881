"""A VNC connection to a domain's display, handed over by libvirt (``virDomainOpenGraphicsFD``).

libvirt gives QEMU one end of a socket pair as a new VNC client (QMP ``add_client``) and passes
the other end to us over the libvirtd UNIX socket (SCM_RIGHTS). No VNC port or socket path has
to be reachable, and ``SKIPAUTH`` skips VNC authentication: whoever may use this libvirt
connection may control the domain anyway. File descriptors only travel over UNIX sockets, so this
works for local hosts only; a remote host's VNC server listens on its network address and speaks
VeNCrypt with X.509 (``graphics_endpoint`` finds it).
"""

from __future__ import annotations

import os
import socket
import urllib.parse

import libvirt
from lxml import etree

from corral.errors import Conflict

#: libvirt transports that reach libvirtd over a local UNIX socket (``qemu:///system``,
#: ``qemu+unix:///system?socket=…``).
_LOCAL_TRANSPORTS = ("", "unix")


def passes_fds(uri: str) -> bool:
    """True when ``uri`` reaches libvirtd over a local UNIX socket (FD passing works)."""
    parts = urllib.parse.urlsplit(uri)
    _driver, _, transport = parts.scheme.partition("+")
    return transport in _LOCAL_TRANSPORTS and not parts.hostname


def require_local(host: str, uri: str) -> None:
    if not passes_fds(uri):
        raise Conflict(
            f"host {host} is reached at {uri}: libvirt hands a VM's screen over only on a local "
            "UNIX socket; reach a remote host's screen over VNC with TLS (its network address)"
        )


def open_graphics_socket(dom: libvirt.virDomain) -> socket.socket:
    """A connected stream socket to the domain's first graphics device (worker thread)."""
    fd = dom.openGraphicsFD(0, libvirt.VIR_DOMAIN_OPEN_GRAPHICS_SKIPAUTH)
    try:
        return socket.socket(fileno=fd)
    except OSError:
        os.close(fd)
        raise


def graphics_endpoint(dom: libvirt.virDomain) -> tuple[str, int] | None:
    """(address, port) of a running domain's VNC server on the network, None when it listens
    on a UNIX socket or has no VNC (worker thread)."""
    root = etree.fromstring(dom.XMLDesc(0).encode())
    graphics = root.find("./devices/graphics[@type='vnc']")
    if graphics is None:
        return None
    port = graphics.get("port", "-1")
    listen = graphics.find("listen")
    if listen is not None and listen.get("type") == "socket":
        return None
    address = (listen.get("address") if listen is not None else None) or graphics.get("listen")
    if not address or not port.isdigit() or int(port) <= 0:
        return None
    return address, int(port)
