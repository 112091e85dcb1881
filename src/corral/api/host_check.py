"""Only requests addressed to Corral by one of its own names are served (DNS rebinding).

A web page on ``evil.example`` whose DNS name is rebound to 127.0.0.1 makes the browser talk to
Corral as if Corral were ``evil.example``: same-origin for the page, so neither the Origin check
nor ``SameSite`` cookies stop it. The ``Host`` header still says ``evil.example``. Accepted are
loopback names and addresses, the listen address, the address the connection arrived at, the
machine's own names and ``public_names``; anything else is refused with 400 before the request
reaches the app. A request without ``Host`` (HTTP/1.0) comes from no browser and passes.
"""

from __future__ import annotations

import functools
import ipaddress
import socket

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from corral.api.problems import problem
from corral.config import Settings
from corral.serving import is_loopback


def host_name(header: str) -> str:
    """The name or address of a ``Host`` header, without port, brackets or final dot."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


@functools.cache
def _machine_names() -> frozenset[str]:
    # getfqdn may ask DNS: asked once, and only for a name nothing cheaper accepted.
    return frozenset(n.lower() for n in (socket.gethostname(), socket.getfqdn()) if n)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | str:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return text
    # A socket bound to "::" reports IPv4 clients' connections as ::ffff:a.b.c.d.
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return mapped or ip


def _same_address(a: str, b: str) -> bool:
    return _address(a) == _address(b)


class HostCheck:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self._names = {host_name(n) for n in [settings.listen_host, *settings.public_names] if n}

    def accepts(self, name: str, scope: Scope) -> bool:
        if is_loopback(name) or name in self._names:
            return True
        server = scope.get("server")
        if server and _same_address(name, str(server[0]).lower()):
            return True  # the address the client connected to: no name to rebind
        return name in _machine_names()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = Headers(scope=scope).get("host")
        if header is None or self.accepts(host_name(header), scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "unknown Host"})
            return
        name = host_name(header)[:255]
        answer = problem(
            400,
            "Unknown host name",
            f"this server does not answer to the name {name!r}: reach Corral by a name it "
            "knows (localhost, its listen address, the machine's name) or add the name to "
            "the `public_names` setting",
        )
        await answer(scope, receive, send)
