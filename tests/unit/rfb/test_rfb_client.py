"""RFBClient against a scripted in-process server: screenshots, input bytes, clipboard."""

from __future__ import annotations

import asyncio
import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from corral.rfb import Encoding, RFBClient
from tests.unit.rfb import _wire as wire


async def test_client_screenshot_input_and_clipboard(tmp_path: Path) -> None:
    img = ((np.arange(12 * 10).reshape(10, 12) * 0x010203) & 0xFFFFFF).astype(np.uint32)
    received = bytearray()
    got_input = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(wire.handshake(12, 10))
        ext_key = wire.rect(0, 0, 12, 10, Encoding.QEMU_EXTENDED_KEY_EVENT)
        writer.write(wire.update(ext_key))
        writer.write(b"\x03\x00\x00\x00" + struct.pack(">I", 5) + b"hello")  # cut text
        while chunk := await reader.read(4096):
            received.extend(chunk)
            # Answer each FramebufferUpdateRequest (type 3) with the whole picture.
            for _ in range(bytes(chunk).count(b"\x03\x00\x00\x00\x00\x00\x00\x0c\x00\x0a")):
                writer.write(wire.update(wire.rect(0, 0, 12, 10, Encoding.RAW, wire.raw(img))))
            if b"\x05\x01\x00\x02\x00\x03" in received:
                got_input.set()

    server = await asyncio.start_unix_server(serve, str(tmp_path / "s.sock"))
    async with server, await RFBClient.connect_unix(str(tmp_path / "s.sock")) as client:
        png = await client.screenshot_png(timeout=5)
        expected = img.view(np.uint8).reshape(10, 12, 4)[:, :, :3]
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), expected)
        assert client.clipboard == "hello"
        assert client.conn.server_supports_qemu_key_events
        await client.type_text("A")
        await client.press("ctrl-c")
        await client.click(2, 3)
        await asyncio.wait_for(got_input.wait(), 5)
    qemu_keys = [
        struct.unpack(">HII", m[2:]) for m in _client_messages(bytes(received)) if m[0] == 255
    ]
    # Shift down, A down, A up, Shift up (XT scancodes), then Ctrl-C.
    assert qemu_keys == [
        (1, 0xFFE1, 0x2A), (1, ord("A"), 0x1E), (0, ord("A"), 0x1E), (0, 0xFFE1, 0x2A),
        (1, 0xFFE3, 0x1D), (1, ord("c"), 0x2E), (0, ord("c"), 0x2E), (0, 0xFFE3, 0x1D),
    ]  # fmt: skip


def _client_messages(data: bytes) -> list[bytes]:
    """Split what the client sent after its handshake (version, security, ClientInit)."""
    pos, out = 14, []
    fixed = {0: 20, 3: 10, 4: 8, 5: 6, 255: 12}
    while pos < len(data):
        kind = data[pos]
        if kind == 2:
            size = 4 + 4 * int(struct.unpack_from(">H", data, pos + 2)[0])
        elif kind == 6:
            size = 8 + abs(int(struct.unpack_from(">i", data, pos + 4)[0]))
        else:
            size = fixed[kind]
        out.append(data[pos : pos + size])
        pos += size
    return out
