"""``HostConsoles``: the ways to a domain's screen and serial port on one host
(``host.consoles``) — screenshots, VNC sockets and addresses, the serial console
(:class:`~corral.virt.console.SerialConsole`) and the serial log kept in Corral's pool."""

from __future__ import annotations

import socket

import libvirt

from corral.virt import _qmp, _storage, _transfer, _vnc
from corral.virt._connection import ManagedConnection
from corral.virt._lookup import lookup
from corral.virt.console import SerialConsole, open_console
from corral.virt.storage import PoolStorage


class HostConsoles:
    def __init__(self, conn: ManagedConnection, host: str, uri: str, storage: PoolStorage) -> None:
        self._conn = conn
        self._host = host
        self._uri = uri
        # Serial logs are files of Corral's pool (QEMU appends to them).
        self._storage = storage

    async def screenshot_png(self, uuid: str) -> bytes:
        return await self._conn.run(
            f"take a screenshot of domain {uuid}",
            lambda c: _transfer.screenshot_png(c, lookup(c, uuid)),
        )

    async def read_serial_log(
        self, name: str, tail_bytes: int | None = None, tail_lines: int | None = None
    ) -> bytes:
        """VM ``name``'s serial log: its last ``tail_lines`` lines, else its last
        ``tail_bytes`` bytes, else all of it."""
        log_name = f"{name}{_storage.SERIAL_LOG_SUFFIX}"
        return await self._conn.run(
            f"read the serial log of VM {name}",
            lambda c: _transfer.download_tail(
                c, self._storage.pool(c), log_name, tail_bytes, tail_lines
            ),
        )

    async def has_serial_log(self, name: str) -> bool:
        """Whether the pool holds a serial log of VM ``name``."""
        log_name = f"{name}{_storage.SERIAL_LOG_SUFFIX}"
        return await self._conn.run(
            f"look up the serial log of VM {name}",
            lambda c: _storage.find(self._storage.pool(c), log_name) is not None,
        )

    async def delete_serial_log(self, name: str) -> None:
        """Remove VM ``name``'s serial log (it is appended to, so a later VM of the same name
        would otherwise inherit it). No error if there is none."""
        log_name = f"{name}{_storage.SERIAL_LOG_SUFFIX}"

        def job(conn: libvirt.virConnect) -> None:
            vol = _storage.find(self._storage.pool(conn), log_name)
            if vol is not None:
                vol.delete(0)

        await self._conn.run(f"delete the serial log of VM {name}", job)

    async def open_serial_console(self, uuid: str, *, force: bool = False) -> SerialConsole:
        """The domain's first console. Conflict when another client holds it, unless ``force``
        (which takes it from that client)."""
        conn = self._conn.require()
        stream = conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
        what = f"serial console of domain {uuid}"
        flags = libvirt.VIR_DOMAIN_CONSOLE_FORCE if force else 0
        await self._conn.run_on_primary(
            f"open the {what}", lambda c: open_console(lookup(c, uuid), stream, flags)
        )
        return SerialConsole(stream, what)

    async def open_vnc(self, uuid: str) -> socket.socket:
        """A connected socket to the domain's VNC server, without VNC authentication (the
        caller owns it). Only for hosts reached over a local UNIX socket."""
        _vnc.require_local(self._host, self._uri)
        return await self._conn.run(
            f"open the screen (VNC) of domain {uuid}",
            lambda c: _vnc.open_graphics_socket(lookup(c, uuid)),
        )

    async def vnc_endpoint(self, uuid: str) -> tuple[str, int] | None:
        """(address, port) of a running domain's VNC server on the network (remote hosts; on
        enrolled hosts it speaks VeNCrypt X509None: connect with
        ``ClusterPki.console_client_context()``); None for a UNIX socket or no VNC."""
        return await self._conn.run(
            f"read the VNC address of domain {uuid}",
            lambda c: _vnc.graphics_endpoint(lookup(c, uuid)),
        )

    async def reload_vnc_certificates(self, uuid: str) -> None:
        """Make a running domain's VNC server re-read its TLS certificates (QMP display-reload)."""
        await self._conn.run(
            f"reload the VNC certificates of domain {uuid}",
            lambda c: _qmp.reload_vnc_certificates(lookup(c, uuid)),
        )
