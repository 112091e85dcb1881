"""The sans-IO connection: handshakes, client messages, pseudo-encodings, pixel formats."""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

import corral.rfb
from corral.rfb import (
    BGR233,
    NEED_DATA,
    PAUSED,
    RGB565,
    RGBX32,
    AuthenticationFailed,
    ClientCutText,
    ClipboardCapabilities,
    Connected,
    CursorShape,
    DesktopResized,
    Encoding,
    FramebufferUpdated,
    FramebufferUpdateRequest,
    KeyEvent,
    LEDState,
    LocalProtocolError,
    PixelFormat,
    PointerEvent,
    QEMUExtendedKeyEventsSupported,
    QEMUKeyEvent,
    RemoteProtocolError,
    RFBConnection,
    SecurityType,
    TLSRequired,
    UnsupportedServer,
    VeNCryptSubtype,
)
from corral.rfb._des import vnc_auth_response
from tests.unit.rfb import _wire as wire
from tests.unit.rfb._drive import feed

ALL = tuple(int(e) for e in Encoding)
INIT = struct.pack(">HH", 4, 3) + RGBX32.to_bytes() + b"\x00\x00\x00\x02vm"


def test_public_names_are_exactly_the_api() -> None:
    """Deliberate API: adding a name here is a decision (httpx does the same)."""
    assert sorted(corral.rfb.__all__) == [
        "AuthenticationFailed",
        "BGR233",
        "Bell",
        "ClientClipboard",
        "ClientContinuousUpdates",
        "ClientCutText",
        "ClientFence",
        "ClientKeyEvent",
        "ClientMessage",
        "ClientMessageKind",
        "ClientMessageReader",
        "ClientPointerEvent",
        "ClientQEMUAudio",
        "ClientQEMUKeyEvent",
        "ClientSetDesktopSize",
        "ClientSetEncodings",
        "ClientSetPixelFormat",
        "ClientUpdateRequest",
        "ClientVersion",
        "ClientXVP",
        "ClipboardAction",
        "ClipboardCapabilities",
        "ClipboardProvided",
        "ColourMapEntries",
        "Connected",
        "ConnectionClosed",
        "ConnectionState",
        "CursorShape",
        "DEFAULT_ENCODINGS",
        "DesktopResized",
        "Encoding",
        "Event",
        "Framebuffer",
        "FramebufferUpdateRequest",
        "FramebufferUpdated",
        "InvalidEncodingData",
        "InvalidRectangle",
        "KEY_NAMES",
        "KeyEvent",
        "LEDState",
        "LimitExceeded",
        "Limits",
        "LocalProtocolError",
        "Message",
        "NEED_DATA",
        "PAUSED",
        "PixelFormat",
        "PointerEvent",
        "QEMUExtendedKeyEventsSupported",
        "QEMUKeyEvent",
        "RFBClient",
        "RFBConnection",
        "RFBConnectionError",
        "RFBError",
        "RFBTimeout",
        "RGB565",
        "RGBX32",
        "ReaderState",
        "Rect",
        "RelayHandshakeState",
        "RelayReady",
        "RelayServerHandshake",
        "RemoteProtocolError",
        "Screen",
        "SecurityChosen",
        "SecurityType",
        "ServerCutText",
        "SetEncodings",
        "TLSRequired",
        "TruncatedStream",
        "UnsupportedServer",
        "Upstream",
        "VeNCryptSubtype",
        "open_upstream",
        "open_upstream_socket",
        "open_upstream_tcp",
    ]


@pytest.mark.parametrize(
    ("greeting", "reply", "security_part"),
    [
        (b"RFB 003.003\n", b"RFB 003.003\n", b"\x00\x00\x00\x01"),
        (b"RFB 003.005\n", b"RFB 003.003\n", b"\x00\x00\x00\x01"),
        (b"RFB 003.007\n", b"RFB 003.007\n", b"\x01\x01"),
        (b"RFB 003.008\n", b"RFB 003.008\n", b"\x01\x01\x00\x00\x00\x00"),
        (b"RFB 003.889\n", b"RFB 003.008\n", b"\x01\x01\x00\x00\x00\x00"),
        (b"RFB 005.000\n", b"RFB 003.008\n", b"\x01\x01\x00\x00\x00\x00"),
    ],
)
def test_versions_and_security_none(greeting: bytes, reply: bytes, security_part: bytes) -> None:
    conn = RFBConnection(encodings=(Encoding.RAW,))
    events = feed(conn, [greeting + security_part + INIT])
    assert isinstance(events[0], Connected)
    assert (events[0].width, events[0].height, events[0].name) == (4, 3, "vm")
    out = conn.data_to_send()
    assert out.startswith(reply)
    # …then (3.7/3.8: the chosen type), ClientInit (shared), SetPixelFormat, SetEncodings.
    assert out.endswith(b"\x01" + b"\0\0\0\0" + RGBX32.to_bytes() + b"\x02\x00\x00\x01" + b"\0" * 4)


def test_vnc_authentication_matches_an_independent_des() -> None:
    from vncdotool.rfb import _vnc_des, des_encrypt

    challenge = bytes(range(16))
    for password in ("secret", "", "longer than"):
        with warnings.catch_warnings():  # vncdotool uses cryptography's deprecated location
            warnings.simplefilter("ignore")
            theirs = des_encrypt(_vnc_des(password), challenge)
        assert vnc_auth_response(password, challenge) == theirs
    conn = RFBConnection(password="secret")
    feed(conn, [b"RFB 003.008\n\x01\x02" + challenge])
    assert conn.data_to_send() == b"RFB 003.008\n\x02" + vnc_auth_response("secret", challenge)
    with pytest.raises(AuthenticationFailed, match="Authentication failure"):
        feed(conn, [b"\x00\x00\x00\x01\x00\x00\x00\x16Authentication failure"])


def test_connection_refused_with_reason() -> None:
    with pytest.raises(AuthenticationFailed, match="too many"):
        feed(RFBConnection(), [b"RFB 003.008\n\x00\x00\x00\x00\x08too many"])


def test_no_common_security_type() -> None:
    with pytest.raises(AuthenticationFailed, match="password"):
        feed(RFBConnection(), [b"RFB 003.008\n\x01\x02"])
    with pytest.raises(AuthenticationFailed, match="ssl_context"):
        feed(RFBConnection(), [b"RFB 003.008\n\x01\x13"])
    with pytest.raises(UnsupportedServer, match="none of which"):
        feed(RFBConnection(), [b"RFB 003.008\n\x01\x10"])


def _vencrypt_to_tls(conn: RFBConnection, subtype: int) -> list[object]:
    server = b"RFB 003.008\n\x01\x13" + b"\x00\x02" + b"\x00" + b"\x02"
    server += struct.pack(">II", VeNCryptSubtype.X509_NONE, VeNCryptSubtype.X509_VNC) + b"\x01"
    events: list[object] = list(feed(conn, [server]))
    out = conn.data_to_send()
    assert out == b"RFB 003.008\n\x13\x00\x02" + struct.pack(">I", subtype)
    return events


@pytest.mark.parametrize("password", [None, "pw"])
def test_vencrypt_asks_the_transport_for_tls(password: str | None) -> None:
    conn = RFBConnection(tls=True, password=password)
    subtype = VeNCryptSubtype.X509_VNC if password else VeNCryptSubtype.X509_NONE
    events = _vencrypt_to_tls(conn, subtype)
    assert events == [TLSRequired(subtype)]
    assert conn.next_event() is PAUSED
    conn.tls_started()
    if password:
        feed(conn, [bytes(16)])
        assert conn.data_to_send() == vnc_auth_response(password, bytes(16))
    events2 = feed(conn, [b"\x00\x00\x00\x00" + INIT])
    assert isinstance(events2[0], Connected) and events2[0].security == SecurityType.VENCRYPT
    assert conn.vencrypt_subtype == subtype


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_vencrypt_plaintext_after_the_tls_ack_is_refused(chunk: int) -> None:
    """Whether the plaintext comes with the ack or in a later read (a fuzzer found the
    chunked case slipping through), it is refused, and never taken for the TLS stream."""
    conn = RFBConnection(tls=True)
    server = b"RFB 003.008\n\x01\x13\x00\x02\x00\x01" + struct.pack(">I", 260) + b"\x01" + b"junk"
    chunks = [server[i : i + chunk] for i in range(0, len(server), chunk)]
    with pytest.raises(RemoteProtocolError, match="plaintext"):
        feed(conn, chunks)


def test_tls_started_refuses_buffered_plaintext() -> None:
    conn = RFBConnection(tls=True)
    _vencrypt_to_tls(conn, VeNCryptSubtype.X509_NONE)
    conn.receive_data(b"junk")
    with pytest.raises(RemoteProtocolError, match="plaintext"):
        conn.tls_started()


def _connected() -> RFBConnection:
    conn = RFBConnection(encodings=ALL)
    feed(conn, [wire.handshake(40, 30)])
    conn.data_to_send()
    return conn


def test_client_messages() -> None:
    conn = RFBConnection()
    with pytest.raises(LocalProtocolError, match="HANDSHAKE"):
        conn.send(KeyEvent(0x61, True))
    conn = _connected()
    assert conn.send(KeyEvent(0x61, True)) == b"\x04\x01\x00\x00\x00\x00\x00\x61"
    assert conn.send(PointerEvent(3, 4, 1)) == b"\x05\x01\x00\x03\x00\x04"
    assert conn.send(FramebufferUpdateRequest(0, 0, 40, 30, False)) == (
        b"\x03\x00\x00\x00\x00\x00\x00\x28\x00\x1e"
    )
    assert conn.send(ClientCutText("héllo")) == b"\x06\x00\x00\x00\x00\x00\x00\x05h\xe9llo"
    with pytest.raises(LocalProtocolError, match="Latin-1"):
        conn.send(ClientCutText("雪"))
    with pytest.raises(LocalProtocolError, match="QEMU"):
        conn.send(QEMUKeyEvent(0x61, 0x1E, True))
    with pytest.raises(LocalProtocolError, match="out of range"):
        conn.send(PointerEvent(70000, 0))


def test_qemu_pseudo_encodings() -> None:
    conn = _connected()
    events = feed(conn, [wire.update(
        wire.rect(0, 0, 40, 30, Encoding.QEMU_EXTENDED_KEY_EVENT),
        wire.rect(0, 0, 0, 0, Encoding.QEMU_LED_STATE, b"\x05"),
    )])  # fmt: skip
    assert events == [
        QEMUExtendedKeyEventsSupported(),
        LEDState(scroll_lock=True, num_lock=False, caps_lock=True),
        FramebufferUpdated(()),
    ]
    assert conn.send(QEMUKeyEvent(0x61, 0x1E, True)) == struct.pack(">BBHII", 255, 0, 1, 0x61, 0x1E)


def test_cursor_and_desktop_size() -> None:
    conn = _connected()
    pixels = np.array([[0x0000FF, 0x00FF00], [0xFF0000, 0xFFFFFF]], np.uint32)
    body = wire.raw(pixels) + b"\x80\xc0"  # mask: row 0 → first pixel, row 1 → both
    ext = b"\x01\0\0\0" + struct.pack(">IHHHHI", 7, 0, 0, 64, 48, 0)
    events = feed(conn, [wire.update(
        wire.rect(1, 1, 2, 2, Encoding.CURSOR, body),
        wire.rect(0, 0, 64, 48, Encoding.EXTENDED_DESKTOP_SIZE, ext),
    )])  # fmt: skip
    cursor = events[0]
    assert isinstance(cursor, CursorShape) and (cursor.hotspot_x, cursor.hotspot_y) == (1, 1)
    assert cursor.rgba[:, :, 3].tolist() == [[255, 0], [255, 255]]
    assert cursor.rgba[1, 0, :3].tolist() == [0, 0, 255]
    resized = events[1]
    assert isinstance(resized, DesktopResized) and (resized.width, resized.height) == (64, 48)
    assert resized.screens[0].id == 7
    assert conn.framebuffer.pixels.shape == (48, 64)


def test_extended_clipboard_caps_are_answered() -> None:
    conn = _connected()
    caps = struct.pack(">II", (1 << 24) | (1 << 28) | 1, 1 << 20)
    events = feed(conn, [struct.pack(">Bxxxi", 3, -len(caps)) + caps])
    assert isinstance(events[0], ClipboardCapabilities) and events[0].sizes == (1 << 20,)
    assert conn.data_to_send().startswith(b"\x06\x00\x00\x00")  # our caps, as a cut-text message
    message = conn.send(ClientCutText("雪\n"))
    (length,) = struct.unpack(">i", message[4:8])
    flags, body = message[8:12], message[12:]
    assert length == -(len(message) - 8) and flags == struct.pack(">I", (1 << 28) | 1)
    assert zlib.decompress(body) == struct.pack(">I", 6) + "雪\r\n".encode() + b"\0"


BGRX_BE = PixelFormat(32, 24, True, True, 255, 255, 255, 16, 8, 0)


@pytest.mark.parametrize("pf", [RGB565, BGR233, BGRX_BE], ids=["565", "233", "be"])
def test_other_pixel_formats(pf: PixelFormat) -> None:
    conn = RFBConnection(encodings=ALL, pixel_format=pf)
    feed(conn, [wire.handshake(2, 1)])
    red = ((pf.red_max << pf.red_shift) | 0).to_bytes(
        pf.bytes_per_pixel, "big" if pf.big_endian else "little"
    )
    white = (
        (pf.red_max << pf.red_shift)
        | (pf.green_max << pf.green_shift)
        | (pf.blue_max << pf.blue_shift)
    ).to_bytes(pf.bytes_per_pixel, "big" if pf.big_endian else "little")
    feed(conn, [wire.update(wire.rect(0, 0, 2, 1, Encoding.RAW, red + white))])
    assert conn.framebuffer.rgb().tolist() == [[[255, 0, 0], [255, 255, 255]]]


def test_tight_jpeg_and_png() -> None:
    rng = np.random.default_rng(0)
    rgb = (rng.integers(0, 4, (16, 24, 1)) * np.array([60, 30, 20])).astype(np.uint8)
    for kind, fmt in ((0x90, "JPEG"), (0xA0, "PNG")):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format=fmt, quality=95)
        data = buf.getvalue()
        conn = _connected()
        enc = Encoding.TIGHT if fmt == "JPEG" else Encoding.TIGHT_PNG
        feed(conn, [wire.update(wire.rect(2, 3, 24, 16, enc, bytes([kind]) +
                                          wire.compact_length(len(data)) + data))])  # fmt: skip
        got = conn.framebuffer.rgb()[3:19, 2:26]
        # PNG is lossless; JPEG must match what the image decoder itself makes of it.
        expected = rgb if fmt == "PNG" else np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        assert np.array_equal(got, expected)


def test_misuse_is_a_local_error() -> None:
    conn = _connected()
    conn.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"x")
    with pytest.raises(LocalProtocolError):
        conn.tls_started()
    bad = _connected()
    with pytest.raises(UnsupportedServer):
        feed(bad, [b"\x77"])
    with pytest.raises(LocalProtocolError, match="failed"):
        bad.next_event()
    assert _connected().next_event() is NEED_DATA
    with pytest.raises(LocalProtocolError, match="true-colour"):
        RFBConnection(pixel_format=PixelFormat(8, 8, False, False, 0, 0, 0, 0, 0, 0))


def test_handover_to_a_relay() -> None:
    """A console proxy does the handshake, then relays: it needs ServerInit and the rest."""
    conn = RFBConnection()
    server_init = wire.handshake(4, 3, b"web1")[18:]
    events = feed(conn, [wire.handshake(4, 3, b"web1") + b"\x02\x02"])
    connected = events[0]
    assert isinstance(connected, Connected)
    assert connected.server_init_bytes() == server_init
    assert conn.take_unparsed() == b""  # the two bells were parsed as events already
    conn2 = RFBConnection()
    conn2.receive_data(wire.handshake(4, 3) + b"\x02")
    assert isinstance(conn2.next_event(), Connected)
    assert conn2.take_unparsed() == b"\x02"
