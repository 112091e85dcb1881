"""The CLI's HTTP/1.1 requests, over the standard library's ``http.client``.

Every ``corral`` command is a new process that sends a few requests to one server, so what it
imports counts more than anything a client library offers: httpx with httpcore and h11 cost
about 60 ms of CPU of ``corral vm list``'s 230 (bench/cli.py), ``http.client`` is imported by
them anyway. ``Connection`` keeps one keep-alive connection to the server (a connection the
server closed while idle is noticed and opened again), honours ``HTTP(S)_PROXY``,
``ALL_PROXY`` and ``NO_PROXY`` like httpx did, and raises ``ConnectFailed``, ``TimedOut`` or
``TransportFailed`` (``client.py`` turns them into messages; only it sends requests here).
"""

from __future__ import annotations

import http.client
import json
import os
import select
import ssl
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.message import Message
from typing import Any


class TransportFailed(Exception):
    """The request did not get an answer (the connection broke, the answer was not HTTP)."""


class ConnectFailed(TransportFailed):
    """No connection to the server (refused, unknown name, TLS handshake or certificate)."""


class TimedOut(TransportFailed):
    """The server did not answer (or accept the connection) within the timeout."""


@dataclass(frozen=True)
class Request:
    """What was sent: ``url.path`` is the path on the server."""

    method: str
    url: urllib.parse.SplitResult


@dataclass(frozen=True)
class Response:
    """The answer, read whole. ``headers.get`` ignores the case of the name."""

    status_code: int
    reason_phrase: str
    headers: Message
    content: bytes
    request: Request

    @property
    def text(self) -> str:
        charset = self.headers.get_content_charset() or "utf-8"
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:  # an unknown charset name
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; ``ValueError`` when it is not."""
        return json.loads(self.content)


def query(params: Mapping[str, Any] | None) -> str:
    """``params`` as a query string, values written as httpx wrote them (``true``/``false``,
    a list as a repeated name)."""
    pairs = []
    for key, value in (params or {}).items():
        for item in value if isinstance(value, list | tuple) else [value]:
            text = str(item).lower() if isinstance(item, bool) else str(item)
            pairs.append((key, text))
    return urllib.parse.urlencode(pairs)


def _proxy_for(scheme: str, host: str) -> urllib.parse.SplitResult | None:
    """The proxy the environment names for ``scheme``, unless ``NO_PROXY`` exempts ``host``."""
    if not any(name.lower().endswith("_proxy") for name in os.environ):
        return None  # the usual case, without importing urllib.request
    import urllib.request

    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(scheme) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    return urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")


class Connection:
    """Requests to one server (``base_url``: scheme, host, port and the path they start with)."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str],
        verify: ssl.SSLContext | bool,
        timeout: float,
    ) -> None:
        self.base = urllib.parse.urlsplit(base_url)
        self.headers = dict(headers)
        self.timeout = timeout
        self._verify = verify
        self._proxy = _proxy_for(self.base.scheme, self.base.hostname or "")
        self._conn: http.client.HTTPConnection | None = None

    def _open(self) -> http.client.HTTPConnection:
        host, port, proxy = self.base.hostname or "", self.base.port, self._proxy
        address = (proxy.hostname or "", proxy.port) if proxy else (host, port)
        conn: http.client.HTTPConnection
        if self.base.scheme == "https":
            verify = self._verify
            context = verify if isinstance(verify, ssl.SSLContext) else _context(verify)
            conn = http.client.HTTPSConnection(*address, timeout=self.timeout, context=context)
            if proxy:
                conn.set_tunnel(host, port, headers=_proxy_auth(proxy))
        else:
            conn = http.client.HTTPConnection(*address, timeout=self.timeout)
        try:
            conn.connect()
        except TimeoutError as exc:
            raise TimedOut(str(exc)) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise ConnectFailed(str(exc) or type(exc).__name__) from exc
        return conn

    def _connection(self) -> http.client.HTTPConnection:
        """The open connection, unless the server closed it meanwhile (it is readable: EOF)."""
        conn = self._conn
        if conn is not None and (conn.sock is None or select.select([conn.sock], [], [], 0)[0]):
            conn.close()
            conn = None
        if conn is None:
            conn = self._conn = self._open()
        return conn

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        content: Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        answer_timeout: float | None = None,
    ) -> Response:
        """Send one request and read the whole answer; ``answer_timeout`` replaces the timeout
        while waiting for the answer once the body is sent."""
        target = self.base.path + path + (f"?{q}" if (q := query(params)) else "")
        sent = {**self.headers, **(headers or {})}
        body: Any = content
        if json_body is not None:
            body = json.dumps(json_body, ensure_ascii=False, allow_nan=False).encode()
            sent["Content-Type"] = "application/json"
        wire_target = target
        if self._proxy and self.base.scheme == "http":  # a plain proxy takes the whole URL
            wire_target = f"{self.base.scheme}://{self.base.netloc}{target}"
            sent.update(_proxy_auth(self._proxy))
        conn = self._connection()
        try:
            conn.request(method, wire_target, body=body, headers=sent)
            if answer_timeout is not None and conn.sock is not None:
                conn.sock.settimeout(answer_timeout)
            answer = conn.getresponse()
            data = answer.read()
            if answer_timeout is not None and conn.sock is not None:
                conn.sock.settimeout(self.timeout)
        except TimeoutError as exc:
            self.close()
            raise TimedOut(str(exc)) from exc
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise TransportFailed(str(exc) or type(exc).__name__) from exc
        if answer.will_close:
            self.close()
        request = Request(method, self.base._replace(path=target.partition("?")[0]))
        return Response(answer.status, answer.reason, answer.msg, data, request)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _context(verify: bool) -> ssl.SSLContext:
    """The system's CAs, or (``verify`` false) no verification at all."""
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _proxy_auth(proxy: urllib.parse.SplitResult) -> dict[str, str]:
    if proxy.username is None:
        return {}
    import base64

    user = urllib.parse.unquote(proxy.username)
    password = urllib.parse.unquote(proxy.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Proxy-Authorization": f"Basic {token}"}
