"""What a browser adds to a request: the session cookie, the CSRF token, the Origin header.

A browser session (cookie ``corral_session``: HttpOnly, SameSite=Strict, Secure under HTTPS)
authenticates API calls and pages alike. Every state-changing request made with it must carry
the session's CSRF token (header ``X-CSRF-Token``, or the form field ``csrf_token`` on pages),
and, when the browser names an ``Origin``, come from Corral's own origin or an allowed one.
"""

from __future__ import annotations

import hmac

from starlette.requests import HTTPConnection

from corral.errors import PermissionDenied

SESSION_COOKIE = "corral_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Sent by the UI's own refreshes (polls, live updates): no person acted, so the session's idle
#: timer is not reset. A client can only shorten its own session with it.
BACKGROUND_HEADER = "x-corral-background"


def is_background(conn: HTTPConnection) -> bool:
    return conn.headers.get(BACKGROUND_HEADER) == "1"


def own_origin(conn: HTTPConnection) -> str:
    """This server's origin as the browser sees it (scheme and Host of the request)."""
    scheme = {"ws": "http", "wss": "https"}.get(conn.url.scheme, conn.url.scheme)
    host = conn.headers.get("host") or conn.url.netloc
    return f"{scheme}://{host}"


def origin_allowed(conn: HTTPConnection, origin: str) -> bool:
    allowed: list[str] = conn.app.state.services.settings.allowed_origins
    return origin == own_origin(conn) or origin in allowed


def check_origin(conn: HTTPConnection) -> None:
    """A browser's cross-site request is refused; a request without Origin (not a browser, or
    a same-origin GET) is left to the CSRF token."""
    origin = conn.headers.get("origin")
    if origin is not None and not origin_allowed(conn, origin):
        raise PermissionDenied(
            f"requests from origin {origin!r} are not allowed: use Corral's own pages "
            f"({own_origin(conn)}) or add the origin to `allowed_origins`"
        )


def check_csrf(sent: str | None, expected: str) -> None:
    if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise PermissionDenied(
            "missing or wrong CSRF token: reload the page and try again (requests made with "
            "a browser session must come from Corral's pages)"
        )


def is_https(conn: HTTPConnection) -> bool:
    return conn.url.scheme in ("https", "wss")
