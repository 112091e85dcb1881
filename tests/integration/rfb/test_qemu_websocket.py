"""RFB over a WebSocket relay (what Corral's console proxy and websockify do) to QEMU."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from corral.rfb import RFBClient
from tests.integration.rfb._qemu import QMP, qemu_vnc

pytestmark = pytest.mark.integration


async def _relay(ws: ServerConnection, vnc: Path, headers_seen: list[str]) -> None:
    headers_seen.append(ws.request.headers.get("Authorization", "") if ws.request else "")
    reader, writer = await asyncio.open_unix_connection(str(vnc))

    async def upstream() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                assert isinstance(message, bytes)
                writer.write(message)
                await writer.drain()
        writer.close()

    async def downstream() -> None:
        # Deliberately re-chunk: WebSocket frames need not align with RFB messages.
        while chunk := await reader.read(777):
            await ws.send(chunk)
        await ws.close()

    await asyncio.gather(upstream(), downstream())


async def test_screenshot_through_a_websocket_relay(tmp_path: Path) -> None:
    seen: list[str] = []
    with qemu_vnc(tmp_path) as (vnc, qmp_socket):
        qmp = await QMP.connect(qmp_socket)
        async with serve(
            lambda ws: _relay(ws, vnc, seen),
            "127.0.0.1",
            0,
            subprotocols=["binary"],  # type: ignore[list-item]
        ) as server:
            port = server.sockets[0].getsockname()[1]
            url = f"ws://127.0.0.1:{port}/console"
            headers = {"Authorization": "Bearer test-token"}
            async with await RFBClient.connect_websocket(url, headers=headers) as client:
                async with asyncio.timeout(30):
                    while True:  # bounded retry: QEMU blinks the text cursor
                        img = await client.screenshot()
                        ref = await qmp.screendump(tmp_path / "ref.ppm")
                        if np.array_equal(img, ref):
                            break
                        await asyncio.sleep(0.2)
                await client.type_text("x")
        await qmp.close()
    assert seen == ["Bearer test-token"]
