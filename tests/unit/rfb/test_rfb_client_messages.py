"""``ClientMessageReader``: every client message whole, byte by byte and with trailing data;
noVNC's real first messages; malformed and oversize input; the view-only classification."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from corral.rfb import (
    NEED_DATA,
    ClientClipboard,
    ClientContinuousUpdates,
    ClientFence,
    ClientKeyEvent,
    ClientMessage,
    ClientMessageKind,
    ClientMessageReader,
    ClientPointerEvent,
    ClientQEMUAudio,
    ClientQEMUKeyEvent,
    ClientSetDesktopSize,
    ClientSetEncodings,
    ClientSetPixelFormat,
    ClientUpdateRequest,
    ClientXVP,
    ConnectionClosed,
    Event,
    InvalidEncodingData,
    LimitExceeded,
    Limits,
    LocalProtocolError,
    PixelFormat,
    ReaderState,
    RemoteProtocolError,
    Screen,
    TruncatedStream,
)
from tests.unit.rfb import _viewer as viewer
from tests.unit.rfb._drive import chunked

NOVNC_PF = PixelFormat(32, 24, False, True, 255, 255, 255, 0, 8, 16)
Kind = ClientMessageKind


def _read(chunks: list[bytes], eof: bool = False, **options: object) -> list[Event]:
    reader = ClientMessageReader(**options)  # type: ignore[arg-type]
    events: list[Event] = []
    for chunk in [*chunks, b""] if eof else chunks:
        reader.receive_data(chunk)
        while (event := reader.next_event()) is not NEED_DATA:
            events.append(event)
            if isinstance(event, ConnectionClosed):
                return events
    return events


# (raw bytes, the event they must give): one of every message type and sub-type.
def _cases() -> list[tuple[bytes, ClientMessage]]:
    caps = viewer.clipboard_caps()
    provide = viewer.clipboard_provide("héllo\nwörld")
    notify = viewer.extended_clipboard(viewer.NOTIFY, viewer.TEXT)
    screen = Screen(7, 0, 0, 1280, 800, 0)
    msgs: list[tuple[bytes, ClientMessage]] = [
        (raw := viewer.pixel_format_24(), ClientSetPixelFormat(raw, NOVNC_PF)),
        (raw := viewer.set_encodings(), ClientSetEncodings(raw, viewer.NOVNC_ENCODINGS)),
        (raw := viewer.set_encodings(()), ClientSetEncodings(raw, ())),
        (raw := viewer.update_request(True, 1, 2, 3, 4),
         ClientUpdateRequest(raw, True, 1, 2, 3, 4)),
        (raw := viewer.key(0xFF0D, True), ClientKeyEvent(raw, 0xFF0D, True)),
        (raw := viewer.key(0x61, False), ClientKeyEvent(raw, 0x61, False)),
        (raw := viewer.pointer(10, 20, 1), ClientPointerEvent(raw, 10, 20, 1)),
        (raw := viewer.cut_text("café"), ClientClipboard(raw, False, 0, 0, "café")),
        (raw := viewer.cut_text(""), ClientClipboard(raw, False, 0, 0, "")),
        (caps, ClientClipboard(caps, True, 0x1F << 24, viewer.TEXT, None)),
        (notify, ClientClipboard(notify, True, viewer.NOTIFY, viewer.TEXT, None)),
        (provide, ClientClipboard(provide, True, viewer.PROVIDE, viewer.TEXT, "héllo\nwörld")),
        (raw := viewer.continuous_updates(True, 0, 0, 640, 480),
         ClientContinuousUpdates(raw, True, 0, 0, 640, 480)),
        (raw := viewer.fence(0x80000003, b"abc"), ClientFence(raw, 0x80000003, b"abc")),
        (raw := viewer.fence(0, b""), ClientFence(raw, 0, b"")),
        (raw := viewer.xvp(4), ClientXVP(raw, 1, 4)),
        (raw := viewer.set_desktop_size(1280, 800, 7),
         ClientSetDesktopSize(raw, 1280, 800, (screen,))),
        (raw := viewer.qemu_key(0xFF54, True, 0xE050), ClientQEMUKeyEvent(raw, 0xFF54, 0xD0, True)),
        (raw := viewer.qemu_audio(0), ClientQEMUAudio(raw, 0)),
        (raw := viewer.qemu_audio(1), ClientQEMUAudio(raw, 1)),
        (raw := viewer.qemu_audio(2, 3, 2, 44100), ClientQEMUAudio(raw, 2, 3, 2, 44100)),
    ]  # fmt: skip
    return msgs


CASES = _cases()
IDS = [f"{type(e).__name__}-{i}" for i, (_, e) in enumerate(CASES)]


@pytest.mark.parametrize(("raw", "expected"), CASES, ids=IDS)
def test_every_message_whole_byte_by_byte_and_with_trailing_data(
    raw: bytes, expected: ClientMessage
) -> None:
    assert _read([raw]) == [expected]
    assert _read(chunked(raw, 1)) == [expected]
    # Trailing data: the next message's first bytes stay buffered, the one after is whole.
    tail = viewer.key(0x62, True)
    assert _read([raw + tail + tail[:3]]) == [expected, ClientKeyEvent(tail, 0x62, True)]
    assert _read(chunked(raw + tail, 1), eof=True) == [
        expected,
        ClientKeyEvent(tail, 0x62, True),
        ConnectionClosed(),
    ]
    event = _read([raw])[0]
    assert isinstance(event, ClientMessage)
    assert event.raw == raw and event.message_type == raw[0]


def test_all_messages_in_one_stream_give_the_same_events_in_any_chunking() -> None:
    stream = b"".join(raw for raw, _ in CASES)
    expected = [event for _, event in CASES]
    for size in (1, 3, 7, 64, len(stream)):
        assert _read(chunked(stream, size)) == expected


def test_novnc_first_messages() -> None:
    """noVNC sends SetPixelFormat, SetEncodings and a full update request after ServerInit."""
    stream = viewer.novnc_first_messages(1024, 768)
    events = _read([stream])
    assert [type(e) for e in events] == [
        ClientSetPixelFormat,
        ClientSetEncodings,
        ClientUpdateRequest,
    ]
    pf, encodings, request = events
    assert isinstance(pf, ClientSetPixelFormat) and pf.pixel_format == NOVNC_PF
    assert isinstance(encodings, ClientSetEncodings)
    assert encodings.encodings == viewer.NOVNC_ENCODINGS
    assert -1063131698 in encodings.encodings  # Extended Clipboard, 0xC0A1E5CE
    assert request == ClientUpdateRequest(stream[-10:], False, 0, 0, 1024, 768)
    assert b"".join(e.raw for e in events if isinstance(e, ClientMessage)) == stream
    assert all(isinstance(e, ClientMessage) and e.kind is Kind.DISPLAY for e in events)
    assert not any(isinstance(e, ClientMessage) and e.changes_guest for e in events)


@pytest.mark.parametrize(
    ("raw", "kind", "changes_guest"),
    [
        (viewer.pixel_format_24(), Kind.DISPLAY, False),
        (viewer.set_encodings(), Kind.DISPLAY, False),
        (viewer.update_request(True, 0, 0, 1, 1), Kind.DISPLAY, False),
        (viewer.continuous_updates(True, 0, 0, 1, 1), Kind.DISPLAY, False),
        (viewer.fence(0, b""), Kind.DISPLAY, False),
        (viewer.key(0x61, True), Kind.INPUT_KEY, True),
        (viewer.qemu_key(0x61, True, 0x1E), Kind.INPUT_KEY, True),
        (viewer.pointer(0, 0, 0), Kind.INPUT_POINTER, True),
        (viewer.cut_text("x"), Kind.CLIPBOARD, True),
        (viewer.clipboard_provide("x"), Kind.CLIPBOARD, True),
        (viewer.extended_clipboard(viewer.NOTIFY, viewer.TEXT), Kind.CLIPBOARD, True),
        (viewer.clipboard_caps(), Kind.CLIPBOARD, False),
        (viewer.extended_clipboard(viewer.REQUEST, viewer.TEXT), Kind.CLIPBOARD, False),
        (viewer.extended_clipboard(viewer.PEEK, 0), Kind.CLIPBOARD, False),
        (viewer.extended_clipboard(1 << 30, 0), Kind.CLIPBOARD, True),  # unknown action
        (viewer.set_desktop_size(800, 600), Kind.RESIZE, True),
        (viewer.xvp(2), Kind.POWER, True),
        (viewer.qemu_audio(0), Kind.AUDIO, False),
    ],
)
def test_view_only_classification(raw: bytes, kind: ClientMessageKind, changes_guest: bool) -> None:
    (event,) = _read([raw])
    assert isinstance(event, ClientMessage)
    assert event.kind is kind and event.kind == kind.value
    assert event.changes_guest is changes_guest


def test_extended_mouse_buttons_framing_is_opt_in() -> None:
    """RFC 6143: bit 7 of the mask is button 8 in a six-byte message; only a server that
    confirmed ExtendedMouseButtons makes it a marker for a seventh byte."""
    classic = struct.pack(">BBHH", 5, 0x81, 3, 4)
    assert _read([classic]) == [ClientPointerEvent(classic, 3, 4, 0x81)]
    extended = viewer.extended_pointer(3, 4, 0x100 | 1)  # button 9 and the left button
    assert _read(chunked(extended, 1), extended_mouse_buttons=True) == [
        ClientPointerEvent(extended, 3, 4, 0x101)
    ]
    plain = viewer.pointer(3, 4, 2)
    assert _read([plain], extended_mouse_buttons=True) == [ClientPointerEvent(plain, 3, 4, 2)]


def test_unparsed_bytes_from_the_handshake_are_not_an_eof() -> None:
    raw = viewer.key(0x61, True)
    reader = ClientMessageReader(unparsed=raw + raw[:2])
    assert reader.next_event() == ClientKeyEvent(raw, 0x61, True)
    assert reader.next_event() is NEED_DATA
    assert ClientMessageReader(unparsed=b"").next_event() is NEED_DATA


def test_eof_between_messages_and_in_the_middle_of_one() -> None:
    assert _read([], eof=True) == [ConnectionClosed()]
    reader = ClientMessageReader()
    reader.receive_data(viewer.key(0x61, True)[:5])
    reader.receive_data(b"")
    with pytest.raises(TruncatedStream, match=r"middle of a KeyEvent message \(5 bytes"):
        reader.next_event()
    with pytest.raises(LocalProtocolError, match="already failed"):
        reader.next_event()
    assert reader.state is ReaderState.ERROR
    with pytest.raises(LocalProtocolError, match="after the end"):
        reader.receive_data(b"x")


SMALL = Limits(max_cut_text_bytes=100, max_client_encodings=8, max_client_screens=2)


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        (b"\x01", RemoteProtocolError, "unknown type 1"),
        (b"\x07", RemoteProtocolError, "unknown type 7"),
        (b"\xfd", RemoteProtocolError, "unknown type 253"),
        (b"\xff\x02", RemoteProtocolError, "unknown sub-type 2"),
        (b"\xff\x01\x00\x03", RemoteProtocolError, "unknown operation 3"),
        (struct.pack(">BxxxIB", 248, 0, 65), RemoteProtocolError, "65-byte payload"),
        (struct.pack(">Bxxxi", 6, -3), RemoteProtocolError, "too short for its 4 bytes of flags"),
        # Sizes are refused from the header alone, before the body is waited for.
        (struct.pack(">Bxxxi", 6, 101), LimitExceeded, "length of 101,.*max_cut_text_bytes"),
        (struct.pack(">Bxxxi", 6, -101), LimitExceeded, "length of 101"),
        (struct.pack(">Bxxxi", 6, -(2**31)), LimitExceeded, "length of 2147483648"),
        (struct.pack(">BxH", 2, 9), LimitExceeded, "count of 9,.*max_client_encodings"),
        (struct.pack(">BxHHBx", 251, 8, 8, 3), LimitExceeded, "count of 3,.*max_client_screens"),
        (viewer.extended_clipboard(viewer.PROVIDE, viewer.TEXT, b"not zlib"),
         InvalidEncodingData, "viewer sent corrupt clipboard data"),
        (viewer.extended_clipboard(viewer.PROVIDE, viewer.TEXT, zlib.compress(b"\0\0\0\x09ab")),
         InvalidEncodingData, "viewer's clipboard data is truncated"),
        (viewer.extended_clipboard(viewer.PROVIDE, viewer.TEXT, zlib.compress(b"\0" * 200)),
         LimitExceeded, "viewer sent more than 100 bytes of clipboard data"),
    ],
)  # fmt: skip
def test_malformed_and_oversize_messages(data: bytes, error: type[Exception], match: str) -> None:
    for chunks in ([data], chunked(data, 1)):
        reader = ClientMessageReader(limits=SMALL)
        with pytest.raises(error, match=match):
            for chunk in chunks:
                reader.receive_data(chunk)
                while reader.next_event() is not NEED_DATA:
                    pass
        assert reader.state is ReaderState.ERROR


def test_limits_allow_the_largest_message_exactly() -> None:
    text = "x" * 100
    raw = viewer.cut_text(text)
    assert _read([raw], limits=SMALL) == [ClientClipboard(raw, False, 0, 0, text)]
    raw = viewer.set_encodings(tuple(range(8)))
    assert _read([raw], limits=SMALL) == [ClientSetEncodings(raw, tuple(range(8)))]


def test_many_messages_in_one_chunk() -> None:
    raw = viewer.pointer(1, 2, 0)
    events = _read([raw * 50_000])
    assert len(events) == 50_000 and events[-1] == ClientPointerEvent(raw, 1, 2, 0)


def _outcome(data: bytes, chunk: int, ext: bool) -> list[Event] | str:
    try:
        return _read(chunked(data, chunk), eof=True, limits=SMALL, extended_mouse_buttons=ext)
    except RemoteProtocolError as exc:
        return type(exc).__name__


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), ext=st.booleans())
@example(data=viewer.novnc_first_messages(8, 8), ext=False)
@example(data=viewer.clipboard_provide("x") + viewer.qemu_audio(2, 1, 1, 8000), ext=True)
def test_any_viewer_bytes_frame_or_raise_remote_protocol_error(data: bytes, ext: bool) -> None:
    whole = _outcome(data, max(len(data), 1), ext)
    assert _outcome(data, 1, ext) == whole
    assert _outcome(data, 7, ext) == whole
    if not isinstance(whole, str):  # lossless framing: the raw bytes are the whole stream
        assert b"".join(e.raw for e in whole if isinstance(e, ClientMessage)) == data
