"""The client-side framebuffer: a numpy array the decoders paint into."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ._batch import PaintBatch
from ._errors import InvalidRectangle, LimitExceeded, RemoteProtocolError
from ._pixel import PixelFormat, U32Array

IntArray = npt.NDArray[np.int64]


class Framebuffer:
    """An ``(height, width)`` array of RGBX words (little-endian bytes R, G, B, pad).

    ``rgb()`` is a zero-copy ``(height, width, 3)`` uint8 view. Every write goes through this
    class, which checks bounds and counts painted pixels against the per-update budget.

    Small Hextile and ZRLE tiles are painted lazily (see ``PaintBatch``): reading ``pixels``
    or ``rgb()`` applies them first, and may therefore raise the ``RemoteProtocolError`` of
    malformed data found only then (the connection reports it too).
    """

    def __init__(self, width: int, height: int, paint_budget: int, pf: PixelFormat) -> None:
        self._pixels: U32Array = np.zeros((height, width), np.uint32)
        self._paint_budget = paint_budget
        self._painted = 0
        self.batch = PaintBatch(pf)
        self.error: RemoteProtocolError | None = None

    def flush(self) -> None:
        """Apply pending batched paints (see ``PaintBatch``)."""
        if self.error is not None:
            raise self.error
        try:
            self.batch.flush(self._pixels, self.charge)
        except RemoteProtocolError as exc:
            self.error = exc
            raise

    @property
    def pixels(self) -> U32Array:
        """The ``(height, width)`` uint32 RGBX array, with every decoded update applied."""
        if self.batch.pending:
            self.flush()
        return self._pixels

    @property
    def width(self) -> int:
        return int(self._pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self._pixels.shape[0])

    def rgb(self) -> npt.NDArray[np.uint8]:
        """The framebuffer as an ``(h, w, 3)`` uint8 view (not a copy)."""
        return self.pixels.view(np.uint8).reshape(self.height, self.width, 4)[:, :, :3]

    def resize(self, width: int, height: int) -> bool:
        """Change the size, keeping the overlapping pixels; False if the size is unchanged.

        QEMU repeats an ExtendedDesktopSize rectangle of the same size after every
        non-incremental update request: that must not clear the screen.
        """
        old = self.pixels
        if (width, height) == (self.width, self.height):
            return False
        self._pixels = np.zeros((height, width), np.uint32)
        h, w = min(height, old.shape[0]), min(width, old.shape[1])
        self._pixels[:h, :w] = old[:h, :w]
        return True

    def start_update(self) -> None:
        self._painted = 0

    def check_rect(self, x: int, y: int, w: int, h: int, what: str = "rectangle") -> None:
        if x + w > self.width or y + h > self.height:
            raise InvalidRectangle(
                f"server sent a {what} at {x},{y} of {w}x{h} pixels that does not fit in the "
                f"{self.width}x{self.height} framebuffer"
            )

    def charge(self, pixels: int) -> None:
        """Count pixels about to be written; raise when the per-update budget is spent."""
        self._painted += pixels
        if self._painted > self._paint_budget:
            raise LimitExceeded(
                f"server made the client paint more than {self._paint_budget} pixels in one "
                "update (overlapping subrectangles or copies); raise "
                "Limits.max_painted_pixels_per_update if this server is trusted"
            )

    def fill(self, x: int, y: int, w: int, h: int, value: int) -> None:
        pixels = self.pixels
        self.charge(w * h)
        pixels[y : y + h, x : x + w] = value

    def put(self, x: int, y: int, block: U32Array) -> None:
        pixels = self.pixels
        h, w = block.shape
        self.charge(w * h)
        pixels[y : y + h, x : x + w] = block

    def copy(self, src_x: int, src_y: int, x: int, y: int, w: int, h: int) -> None:
        self.check_rect(src_x, src_y, w, h, "CopyRect source")
        if self.batch.pending:
            self.flush()
        self.charge(w * h)
        # numpy detects the overlap and copies through a temporary.
        self.pixels[y : y + h, x : x + w] = self.pixels[src_y : src_y + h, src_x : src_x + w]

    def paint_rects(
        self, xs: IntArray, ys: IntArray, ws: IntArray, hs: IntArray, values: U32Array
    ) -> None:
        """Paint many rectangles in order (later ones win), without a per-pixel Python loop.

        Callers have checked that every rectangle lies inside the framebuffer. Work is done in
        in-order batches of at most ``_BATCH`` pixels so memory stays bounded; a rectangle
        larger than a batch is filled with a slice.
        """
        if self.batch.pending:
            self.flush()
        counts = ws * hs
        self.charge(int(counts.sum()))
        ends = np.cumsum(counts)
        start = 0
        n = int(counts.size)
        while start < n:
            base = int(ends[start] - counts[start])
            stop = int(np.searchsorted(ends, base + _BATCH, side="right"))
            if stop <= start:  # one rectangle bigger than a batch
                x, y, w, h = int(xs[start]), int(ys[start]), int(ws[start]), int(hs[start])
                self.pixels[y : y + h, x : x + w] = values[start]
                start += 1
                continue
            sl = slice(start, stop)
            self._paint_small(xs[sl], ys[sl], ws[sl], counts[sl], values[sl])
            start = stop

    def _paint_small(
        self, xs: IntArray, ys: IntArray, ws: IntArray, counts: IntArray, values: U32Array
    ) -> None:
        total = int(counts.sum())
        if total == 0:
            return
        which = np.repeat(np.arange(counts.size), counts)
        starts = np.cumsum(counts) - counts
        local = np.arange(total) - starts[which]
        rw = ws[which]
        dy = local // rw
        dx = local - dy * rw
        flat_index = (ys[which] + dy) * self.width + xs[which] + dx
        # A 1-D fancy assignment writes in index order, so later rectangles overwrite earlier
        # ones, as RRE and Hextile require (tested against a per-rectangle reference).
        self.pixels.reshape(-1)[flat_index] = values[which]


_BATCH = 1 << 20
