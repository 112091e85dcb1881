"""What every WebSocket route needs: credentials from the handshake, refusals before upgrade."""

from __future__ import annotations

from starlette.websockets import WebSocket

from corral.api.problems import problem, status_for
from corral.errors import CorralError


def bearer(ws: WebSocket) -> str | None:
    header = ws.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token else None


async def refuse(ws: WebSocket, exc: CorralError) -> None:
    """Answer the handshake with an HTTP problem+json (nothing is upgraded, nothing relayed),
    so clients can show the reason; servers without the denial-response extension get a
    policy-violation close instead."""
    status, title = status_for(exc)
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(problem(status, title, exc.message))
    else:
        await ws.close(code=1008, reason=exc.message[:120])
