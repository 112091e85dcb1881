"""Every decoder against the test encoders, fed whole, in small chunks and with trailing data."""

from __future__ import annotations

import zlib

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.rfb import (
    DesktopResized,
    Encoding,
    FramebufferUpdated,
    InvalidRectangle,
    Rect,
    RFBConnection,
)
from tests.unit.rfb import _wire as wire
from tests.unit.rfb._drive import chunked, feed

ALL = tuple(int(e) for e in Encoding)


@st.composite
def images(draw: st.DrawFn, max_side: int = 70) -> npt.NDArray[np.uint32]:
    w = draw(st.integers(1, max_side))
    h = draw(st.integers(1, max_side))
    ncolours = draw(st.integers(1, 20))
    palette = np.array(
        draw(st.lists(st.integers(0, 0xFFFFFF), min_size=ncolours, max_size=ncolours)),
        np.uint32,
    )
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    index = rng.integers(0, ncolours, (h, w))
    if draw(st.booleans()):  # blocky images exercise solid tiles and runs
        index = np.repeat(np.repeat(index[::8, ::8], 8, 0), 8, 1)[:h, :w]
    return palette[index]


def connected(w: int, h: int) -> RFBConnection:
    conn = RFBConnection(encodings=ALL)
    feed(conn, [wire.handshake(w, h)])
    conn.data_to_send()
    return conn


class Encoder:
    """One server's compression state: zlib streams persist across rectangles."""

    def __init__(self) -> None:
        self.zlib = zlib.compressobj()
        self.zrle = zlib.compressobj()
        self.tight = [zlib.compressobj() for _ in range(4)]

    def encode(self, kind: str, img: npt.NDArray[np.uint32], mode: int) -> tuple[int, bytes]:
        if kind == "raw":
            return Encoding.RAW, wire.raw(img)
        if kind == "zlib":
            data = self.zlib.compress(wire.raw(img)) + self.zlib.flush(zlib.Z_SYNC_FLUSH)
            return Encoding.ZLIB, len(data).to_bytes(4, "big") + data
        if kind == "hextile":
            return Encoding.HEXTILE, wire.hextile(img, mode)
        if kind == "zrle":
            return Encoding.ZRLE, wire.zrle(img, self.zrle, mode)
        return Encoding.TIGHT, wire.tight(img, self.tight, mode)


KINDS = ["raw", "zlib", "hextile", "zrle", "tight"]


@settings(max_examples=40, deadline=None)
@given(img=images(), kind=st.sampled_from(KINDS), mode=st.integers(0, 2), split=st.integers(1, 97))
def test_decoded_image_equals_encoded_image(
    img: npt.NDArray[np.uint32], kind: str, mode: int, split: int
) -> None:
    h, w = img.shape
    enc, body = Encoder().encode(kind, img, mode)
    message = wire.update(wire.rect(3, 2, w, h, enc, body))
    expected_events = [FramebufferUpdated((Rect(3, 2, w, h, enc),))]
    results = []
    for chunks in ([message], chunked(message, split), [message + b"\x02"]):
        conn = connected(w + 5, h + 4)
        events = feed(conn, chunks)
        assert events[: len(expected_events)] == expected_events
        results.append(conn.framebuffer.pixels.copy())
        np.testing.assert_array_equal(conn.framebuffer.pixels[2 : 2 + h, 3 : 3 + w], img)
        assert not conn.framebuffer.pixels[:2].any() and not conn.framebuffer.pixels[:, :3].any()
    assert all(np.array_equal(results[0], r) for r in results[1:])


def test_byte_by_byte_equals_whole() -> None:
    rng = np.random.default_rng(7)
    img = rng.integers(0, 4, (40, 50)).astype(np.uint32) * 0x102030
    encoder = Encoder()
    messages = b"".join(
        wire.update(wire.rect(0, 0, 50, 40, *encoder.encode(kind, img, mode)))
        for kind in KINDS
        for mode in range(3)
    ) + wire.update(wire.rect(10, 10, 5, 5, Encoding.COPY_RECT, wire.copy_rect(0, 0)))
    whole = connected(50, 40)
    events_whole = feed(whole, [messages], eof=True)
    single = connected(50, 40)
    events_single = feed(single, chunked(messages, 1), eof=True)
    assert events_whole == events_single
    assert len(events_whole) == 17  # 16 updates and ConnectionClosed
    np.testing.assert_array_equal(whole.framebuffer.pixels, single.framebuffer.pixels)


@settings(max_examples=30, deadline=None)
@given(
    bg=st.integers(0, 0xFFFFFF),
    subs=st.lists(
        st.tuples(st.integers(0, 0xFFFFFF), st.integers(0, 30), st.integers(0, 20),
                  st.integers(1, 10), st.integers(1, 10)),
        max_size=60,
    ),
)  # fmt: skip
def test_rre_later_subrects_win(bg: int, subs: list[tuple[int, int, int, int, int]]) -> None:
    subs = [(v, x, y, w, h) for v, x, y, w, h in subs if x + w <= 40 and y + h <= 30]
    conn = connected(40, 30)
    feed(conn, [wire.update(wire.rect(0, 0, 40, 30, Encoding.RRE, wire.rre(bg, subs)))])
    expected = np.full((30, 40), bg, np.uint32)
    for v, x, y, w, h in subs:  # the reference: one rectangle at a time
        expected[y : y + h, x : x + w] = v
    np.testing.assert_array_equal(conn.framebuffer.pixels, expected)


def test_copy_rect_overlapping_moves_like_a_scroll() -> None:
    img = np.arange(30 * 20, dtype=np.uint32).reshape(20, 30)
    conn = connected(30, 20)
    feed(conn, [wire.update(wire.rect(0, 0, 30, 20, Encoding.RAW, wire.raw(img)))])
    feed(conn, [wire.update(wire.rect(0, 0, 30, 19, Encoding.COPY_RECT, wire.copy_rect(0, 1)))])
    np.testing.assert_array_equal(conn.framebuffer.pixels[:19], img[1:])


def test_rect_outside_the_framebuffer_is_refused() -> None:
    conn = connected(16, 16)
    with pytest.raises(InvalidRectangle, match="does not fit"):
        feed(conn, [wire.update(wire.rect(10, 0, 8, 1, Encoding.RAW, b"\0" * 32))])


def test_desktop_size_resizes_and_keeps_pixels() -> None:
    conn = connected(8, 8)
    img = np.full((8, 8), 0x123456, np.uint32)
    feed(conn, [wire.update(wire.rect(0, 0, 8, 8, Encoding.RAW, wire.raw(img)))])
    events = feed(conn, [wire.update(wire.rect(0, 0, 16, 4, Encoding.DESKTOP_SIZE))])
    assert events == [DesktopResized(16, 4), FramebufferUpdated(())]
    assert conn.framebuffer.pixels.shape == (4, 16)
    assert (conn.framebuffer.pixels[:, :8] == 0x123456).all()


def test_repeated_and_overlapping_zrle_tiles() -> None:
    """Tiles decoded once are reused from the tile cache; overlapping rectangles keep order."""
    a = np.array([[1, 2] * 8] * 10, np.uint32) * 0x10101
    b = a[:, ::-1].copy()
    encoder = Encoder()
    conn = connected(64, 40)
    expected = np.zeros((40, 64), np.uint32)
    for step in range(6):
        x, y = 8 * step, 3 * step
        img = a if step % 2 else b
        rects = [wire.rect(x, y, 16, 10, *encoder.encode("zrle", img, 0))]
        expected[y : y + 10, x : x + 16] = img
        # The same place again in the same update, with the other picture: the last one wins.
        other = b if step % 2 else a
        rects.append(wire.rect(x + 4, y, 16, 10, *encoder.encode("zrle", other, 0)))
        expected[y : y + 10, x + 4 : x + 20] = other
        feed(conn, [wire.update(*rects)])
        np.testing.assert_array_equal(conn.framebuffer.pixels, expected)


# Overlapping rectangles in a 80x48 framebuffer; the last one spans several ZRLE tiles.
_OVERLAPPING = [(0, 0, 40, 30), (20, 10, 40, 30), (8, 4, 70, 40)]


@pytest.mark.parametrize("colours", [(2, 5, 20), (1, 2, 1)])
@pytest.mark.parametrize("mode", [0, 1, 2])
@pytest.mark.parametrize("order", ["HZ", "ZH", "HZH", "ZHZ"])
def test_overlapping_hextile_and_zrle_paint_in_wire_order(
    order: str, mode: int, colours: tuple[int, int, int]
) -> None:
    """Hextile tiles wait in the paint batch while ZRLE paints each rectangle at once: in one
    update, overlapping rectangles of both must still end up painted in the order sent."""
    rng = np.random.default_rng(mode * 10 + len(order))
    encoder = Encoder()
    rects = []
    expected = np.zeros((48, 80), np.uint32)
    for i, kind in enumerate(order):
        x, y, w, h = _OVERLAPPING[i]
        # Disjoint palettes: every overlapped pixel shows which rectangle painted last.
        palette = np.uint32((i + 1) << 20) | rng.integers(0, 1 << 20, colours[i], np.uint32)
        img = palette[rng.integers(0, colours[i], (h, w))]
        enc, body = encoder.encode("hextile" if kind == "H" else "zrle", img, mode)
        rects.append(wire.rect(x, y, w, h, enc, body))
        expected[y : y + h, x : x + w] = img
    message = wire.update(*rects)
    for chunks in ([message], chunked(message, 7)):
        conn = connected(80, 48)
        events = feed(conn, chunks)
        assert [type(e) for e in events] == [FramebufferUpdated]
        np.testing.assert_array_equal(conn.framebuffer.pixels, expected)


def test_rect_is_an_immutable_hashable_value() -> None:
    rect = Rect(1, 2, 16, 10, Encoding.ZRLE)
    assert (rect.x, rect.y, rect.width, rect.height, rect.encoding) == (1, 2, 16, 10, 16)
    assert rect == Rect(1, 2, 16, 10, 16) and rect != Rect(1, 2, 16, 10, Encoding.HEXTILE)
    assert len({rect, Rect(1, 2, 16, 10, 16)}) == 1
    assert repr(Rect(1, 2, 16, 10, 16)) == "Rect(x=1, y=2, width=16, height=10, encoding=16)"
    with pytest.raises(AttributeError):
        rect.x = 5  # type: ignore[misc]
    match rect:
        case Rect(x, y, encoding=Encoding.ZRLE):
            assert (x, y) == (1, 2)
        case _:
            pytest.fail("Rect does not match by position and keyword")
