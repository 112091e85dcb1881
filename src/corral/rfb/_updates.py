"""Server-to-client messages after the handshake: updates, rectangles, bell, clipboard."""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable

import numpy as np

from ._clipboard import handle_extended_clipboard, our_capabilities
from ._dec_basic import decode_copy_rect, decode_raw, decode_rre, decode_zlib
from ._dec_hextile import HextileDecoder
from ._dec_tight import decode_tight
from ._dec_zrle import decode_zrle, paint_zrle
from ._errors import RemoteProtocolError, UnsupportedServer
from ._events import (
    Bell,
    ClipboardCapabilities,
    ColourMapEntries,
    DesktopResized,
    Encoding,
    Event,
    FramebufferUpdated,
    LEDState,
    QEMUExtendedKeyEventsSupported,
    Rect,
    ServerCutText,
)
from ._pseudo import decode_cursor, decode_extended_desktop_size
from ._reader import DecodeContext, NeedData, Reader, check_compressed_length

_Decoder = Callable[[Reader, DecodeContext, int, int, int, int], None]
_DECODERS: dict[int, _Decoder] = {
    Encoding.RAW: decode_raw,
    Encoding.COPY_RECT: decode_copy_rect,
    Encoding.RRE: decode_rre,
    Encoding.ZLIB: decode_zlib,
    Encoding.ZRLE: decode_zrle,
    Encoding.TIGHT: decode_tight,
    Encoding.TIGHT_PNG: lambda r, c, x, y, w, h: decode_tight(r, c, x, y, w, h, png=True),
    Encoding.HEXTILE: lambda r, c, x, y, w, h: None,  # resumable: handled in _rects
}
_RECT = struct.Struct(">HHHHi")
_HEXTILE = int(Encoding.HEXTILE)
_ZRLE = int(Encoding.ZRLE)
_U32 = struct.Struct(">I")
_UNLIMITED_RECTS = 0xFFFF  # with LastRect: "count until the LastRect rectangle"


class _Phase(enum.Enum):
    MESSAGE = enum.auto()  # between messages → RECT_HEADER on FramebufferUpdate
    RECT_HEADER = enum.auto()  # → RECT_BODY (Hextile, resumable) or stays (other encodings)
    RECT_BODY = enum.auto()  # → RECT_HEADER, or MESSAGE after the last rectangle


class UpdateParser:
    """Parses messages in the NORMAL state and applies rectangles to the framebuffer."""

    def __init__(
        self, ctx: DecodeContext, allowed: set[int], queue: Callable[[bytes], None]
    ) -> None:
        self.ctx = ctx
        self.allowed = allowed | {Encoding.RAW}
        self.qemu_key_events = False
        self.clipboard_caps: ClipboardCapabilities | None = None
        self._queue = queue
        self._phase = _Phase.MESSAGE
        self._remaining = 0
        self._seen = 0
        self._done_rects: list[tuple[int, int, int, int, int]] = []
        self._hextile: HextileDecoder | None = None
        self._pending: Event | None = None

    @property
    def idle(self) -> bool:
        return self._phase is _Phase.MESSAGE and self._pending is None

    def step(self, r: Reader, commit: Callable[[int], int]) -> Event | None:
        """Parse from ``r``; ``commit(pos)`` keeps finished work and returns the new position
        (the buffer may be compacted)."""
        if self._pending is not None:
            event, self._pending = self._pending, None
            return event
        if self._phase is _Phase.MESSAGE:
            return self._message(r)
        if self._phase is _Phase.RECT_BODY:
            assert self._hextile is not None
            if not self._hextile.feed(r):
                commit(r.pos)  # keep the tiles already parsed
                raise NeedData
            self._hextile = None
            self._phase = _Phase.RECT_HEADER
            r.pos = commit(r.pos)
            done = self._rect_done()
            if done is not None:
                return done
        return self._rects(r, commit)

    def _rects(self, r: Reader, commit: Callable[[int], int]) -> Event | None:
        """Decode rectangles until the update ends, an event is due or data runs out.

        One loop for all rectangles: QEMU sends dozens of tiny ones per update, so the
        per-rectangle overhead is what decoding speed is made of (hence the inlined raw path).
        """
        buf = r.buf
        ctx = self.ctx
        fb = ctx.framebuffer
        width, height = fb.width, fb.height
        allowed, decoders, rects = self.allowed, _DECODERS, self._done_rects
        fast_raw = ctx.pixel_format.is_rgbx32
        max_compressed = ctx.limits.max_compressed_rect_bytes
        while True:
            pos = r.pos
            if pos + 12 > len(buf):
                raise NeedData
            x, y, w, h, encoding = _RECT.unpack_from(buf, pos)
            r.pos = pos = pos + 12
            if encoding not in allowed:
                raise UnsupportedServer(f"server used encoding {encoding}, which was not requested")
            decoder = decoders.get(encoding)
            if decoder is None:
                return self._special(r, encoding, x, y, w, h)
            if x + w > width or y + h > height:
                fb.check_rect(x, y, w, h)
            if encoding == 0 and fast_raw:
                end = pos + 4 * w * h
                if end > len(buf):
                    raise NeedData
                block = np.frombuffer(buf, np.uint32, w * h, pos).reshape(h, w)
                fb.put(x, y, block)
                del block  # release the view: the buffer may be compacted below
                r.pos = end
            elif encoding == _ZRLE and pos + 4 <= len(buf):
                # Inlined decode_zrle: it runs once per tiny rectangle.
                (length,) = _U32.unpack_from(buf, pos)
                end = pos + 4 + length
                if length > max_compressed:
                    check_compressed_length(ctx.limits, length)
                if end > len(buf):
                    raise NeedData
                # A bytearray slice is a copy (no bytes() needed): nothing holds on to buf.
                paint_zrle(ctx, x, y, w, h, buf[pos + 4 : end])
                r.pos = end
            elif encoding == _HEXTILE:
                hextile = HextileDecoder(ctx, x, y, w, h)
                if not hextile.feed(r):
                    rects.append((x, y, w, h, encoding))
                    self._hextile = hextile
                    self._phase = _Phase.RECT_BODY
                    commit(r.pos)
                    raise NeedData
            else:
                decoder(r, ctx, x, y, w, h)
            rects.append((x, y, w, h, encoding))
            r.pos = commit(r.pos)
            if fb.batch.full:
                fb.flush()
            self._seen += 1
            if self._remaining < 0:
                self._check_rects(self._seen)
            elif self._seen >= self._remaining:
                return self._finish()

    def _special(self, r: Reader, encoding: int, x: int, y: int, w: int, h: int) -> Event | None:
        if encoding == Encoding.LAST_RECT:
            return self._finish()
        if encoding in _PSEUDO:
            event = self._pseudo(r, encoding, x, y, w, h)
            done = self._rect_done()
            if event is None:
                return done
            self._pending = done
            return event
        raise UnsupportedServer(f"server used encoding {encoding}, which cannot be decoded")

    def _message(self, r: Reader) -> Event | None:
        kind = r.u8()
        if kind == 0:
            r.skip(1)
            count = r.u16()
            unlimited = count == _UNLIMITED_RECTS and Encoding.LAST_RECT in self.allowed
            if not unlimited:
                self._check_rects(count)
            self._remaining = -1 if unlimited else count
            self._seen = 0
            self._done_rects = []
            self.ctx.start_update()
            self._phase = _Phase.RECT_HEADER
            return self._finish() if count == 0 else None
        if kind == 1:
            r.skip(1)
            first, count = r.u16(), r.u16()
            data = r.take(count * 6)
            values = struct.unpack(f">{count * 3}H", data)
            colours = tuple(zip(values[0::3], values[1::3], values[2::3], strict=True))
            return ColourMapEntries(first, colours)
        if kind == 2:
            return Bell()
        if kind == 3:
            return self._cut_text(r)
        raise UnsupportedServer(f"server sent the unknown or unrequested message type {kind}")

    def _check_rects(self, count: int) -> None:
        limits = self.ctx.limits
        limits.check(count, limits.max_rects_per_update, "an update with rectangles",
                     "max_rects_per_update")  # fmt: skip

    def _cut_text(self, r: Reader) -> Event | None:
        r.skip(3)
        length = r.s32()
        limits = self.ctx.limits
        limits.check(abs(length), limits.max_cut_text_bytes, "clipboard text bytes",
                     "max_cut_text_bytes")  # fmt: skip
        if length >= 0:
            return ServerCutText(r.take(length).decode("latin-1"))
        if Encoding.EXTENDED_CLIPBOARD not in self.allowed:
            raise RemoteProtocolError(
                "server sent extended clipboard data the client did not ask for"
            )
        event = handle_extended_clipboard(r.take(-length), limits)
        if isinstance(event, ClipboardCapabilities) and self.clipboard_caps is None:
            self.clipboard_caps = event
            self._queue(our_capabilities(limits))
        return event

    def _pseudo(self, r: Reader, encoding: int, x: int, y: int, w: int, h: int) -> Event | None:
        ctx = self.ctx
        if encoding == Encoding.DESKTOP_SIZE:
            ctx.limits.check_size(w, h, "framebuffer")
            ctx.framebuffer.resize(w, h)
            return DesktopResized(w, h)
        if encoding == Encoding.EXTENDED_DESKTOP_SIZE:
            event = decode_extended_desktop_size(r, x, y, w, h)
            if event.status == 0:
                ctx.limits.check_size(w, h, "framebuffer")
                ctx.framebuffer.resize(w, h)
            return event
        if encoding == Encoding.CURSOR:
            return decode_cursor(r, ctx.pixel_format, ctx.limits, x, y, w, h)
        if encoding == Encoding.QEMU_LED_STATE:
            flags = r.u8()
            return LEDState(bool(flags & 1), bool(flags & 2), bool(flags & 4))
        if encoding == Encoding.QEMU_EXTENDED_KEY_EVENT:
            first = not self.qemu_key_events
            self.qemu_key_events = True
            return QEMUExtendedKeyEventsSupported() if first else None
        return None  # audio and other acknowledgement-only pseudo-encodings

    def _rect_done(self) -> Event | None:
        self._seen += 1
        if self._remaining < 0:
            self._check_rects(self._seen)
        self._phase = _Phase.RECT_HEADER
        if self._remaining >= 0 and self._seen >= self._remaining:
            return self._finish()
        return None

    def _finish(self) -> Event:
        self._phase = _Phase.MESSAGE
        # Paint at the end of every update: the event promises a finished framebuffer, and
        # errors in deferred data surface here, from next_event.
        self.ctx.framebuffer.flush()
        rects = tuple(map(Rect._make, self._done_rects))
        self._done_rects = []
        return FramebufferUpdated(rects)


_PSEUDO = frozenset(
    {
        Encoding.DESKTOP_SIZE,
        Encoding.EXTENDED_DESKTOP_SIZE,
        Encoding.CURSOR,
        Encoding.QEMU_LED_STATE,
        Encoding.QEMU_EXTENDED_KEY_EVENT,
        Encoding.QEMU_AUDIO,
    }
)
