"""The shared atheris target: bytes either decode or raise ``RemoteProtocolError``.

Each ``rfb_<decoder>.py`` fuzzes one decoder: the input's first two bytes give the rectangle's
size (up to 63x63 in a 64x64 framebuffer), the rest is the rectangle's body. Feeding the same
input whole and in small chunks must give the same events (h11's rule for sans-IO parsers).
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import atheris

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

# Coverage feedback from Corral's own code only: instrumenting numpy, PIL, asyncio and the rest
# of what corral.rfb imports cost each harness about 10 s of CPU before its first input, and
# their paths are not what is being fuzzed.
with atheris.instrument_imports(include=["corral"]):
    from corral.rfb import (
        RGBX32,
        AuthenticationFailed,
        Encoding,
        Limits,
        RemoteProtocolError,
        RFBConnection,
    )
    from corral.rfb._events import Event

ALL = tuple(int(e) for e in Encoding)
LIMITS = Limits(max_decompressed_bytes_per_update=8 << 20, max_cut_text_bytes=1 << 16)


def server_init(width: int, height: int) -> bytes:
    return (
        b"RFB 003.008\n\x01\x01\x00\x00\x00\x00"
        + struct.pack(">HH", width, height)
        + RGBX32.to_bytes()
        + b"\x00\x00\x00\x04fuzz"
    )


def events(data: bytes, chunk: int, **options: object) -> list[Event] | str:
    conn = RFBConnection(encodings=ALL, limits=LIMITS, **options)  # type: ignore[arg-type]
    out: list[Event] = []
    try:
        for i in range(0, len(data), chunk):
            conn.receive_data(data[i : i + chunk])
            while (event := conn.next_event()).__class__.__name__ != "_Sentinel":
                out.append(event)
        conn.receive_data(b"")
        while (event := conn.next_event()).__class__.__name__ != "_Sentinel":
            out.append(event)
            if event.__class__.__name__ == "ConnectionClosed":
                break
    except (RemoteProtocolError, AuthenticationFailed) as exc:
        return type(exc).__name__
    return out


def check(stream: bytes, **options: object) -> None:
    whole = events(stream, max(len(stream), 1), **options)
    chunked = events(stream, 7, **options)
    if repr(whole) != repr(chunked):
        raise AssertionError(f"whole {whole!r} != chunked {chunked!r}")


def rect_target(encoding: int) -> object:
    def test_one_input(data: bytes) -> None:
        if len(data) < 2:
            return
        w, h = data[0] & 63, data[1] & 63
        rect = struct.pack(">BxHHHHHi", 0, 1, 0, 0, w, h, encoding) + data[2:]
        check(server_init(64, 64) + rect)

    return test_one_input


def stream_target(data: bytes) -> None:
    """Whole server streams from the first byte (handshake, then messages)."""
    if not data:
        return
    options = {"password": "pw" if data[0] & 1 else None, "tls": bool(data[0] & 2)}
    check(data[1:], **options)


def main(target: object) -> None:
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()
