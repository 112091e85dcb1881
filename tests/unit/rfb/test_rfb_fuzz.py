"""Property: any server bytes either decode or raise ``RemoteProtocolError`` (h11's fuzz rule).

The same rule the atheris harnesses under ``fuzz/`` check for longer; feeding the input whole,
byte by byte or with trailing data must give the same events.
"""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from corral.rfb import (
    AuthenticationFailed,
    Encoding,
    Event,
    Limits,
    RemoteProtocolError,
    RFBConnection,
)
from tests.unit.rfb import _wire as wire
from tests.unit.rfb._drive import chunked, feed

ALL = tuple(int(e) for e in Encoding)
SMALL = Limits(max_decompressed_bytes_per_update=1 << 20, max_cut_text_bytes=1 << 16)


def _run(data: bytes, chunk: int, **options: object) -> list[Event] | str:
    conn = RFBConnection(encodings=ALL, limits=SMALL, **options)  # type: ignore[arg-type]
    try:
        return feed(conn, chunked(data, chunk), eof=True)
    except (RemoteProtocolError, AuthenticationFailed) as exc:
        return type(exc).__name__


def _check_same(data: bytes, **options: object) -> None:
    whole = _run(data, max(len(data), 1), **options)
    assert _run(data, 1, **options) == whole
    assert _run(data, 7, **options) == whole


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    encoding=st.sampled_from(ALL),
    w=st.integers(0, 40),
    h=st.integers(0, 40),
    body=st.binary(max_size=400),
)
@example(encoding=Encoding.HEXTILE, w=16, h=16, body=b"\x08\x01")  # subrects, no background
@example(encoding=Encoding.TIGHT, w=8, h=8, body=b"\x40\x02" + b"\0" * 8)  # gradient
@example(encoding=Encoding.ZRLE, w=4, h=4, body=b"\0\0\0\x05x\x9c\x03\0\0")
def test_any_rectangle_body_decodes_or_raises_remote_protocol_error(
    encoding: int, w: int, h: int, body: bytes
) -> None:
    data = wire.handshake(40, 40) + wire.update(wire.rect(0, 0, w, h, encoding, body))
    _check_same(data)


@settings(max_examples=300, deadline=None)
@given(stream=st.binary(max_size=300), password=st.sampled_from([None, "pw"]), tls=st.booleans())
@example(stream=b"RFB 003.003\n\0\0\0\x01" + b"\0" * 24, password=None, tls=False)
@example(stream=b"RFB 003.008\n\x01\x13\x00\x02\x00\x01\x00\x00\x01\x04\x01", password=None,
         tls=True)  # fmt: skip
def test_any_server_stream_parses_or_raises(stream: bytes, password: str | None, tls: bool) -> None:
    _check_same(stream, password=password, tls=tls)


@settings(max_examples=200, deadline=None)
@given(messages=st.binary(max_size=300))
def test_any_stream_after_server_init_parses_or_raises(messages: bytes) -> None:
    _check_same(wire.handshake(20, 10) + messages)


def test_extended_clipboard_roundtrip() -> None:
    import zlib

    payload = zlib.compress(struct.pack(">I", 7) + b"hi\r\nyo\0")
    flags = struct.pack(">I", (1 << 28) | 1)
    msg = struct.pack(">Bxxxi", 3, -(len(payload) + 4)) + flags + payload
    events = _run(wire.handshake(4, 4) + msg, 1000)
    assert not isinstance(events, str)
    assert any(getattr(e, "text", None) == "hi\nyo" for e in events)
