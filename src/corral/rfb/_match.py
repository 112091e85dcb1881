"""Exact template matching on the framebuffer (for ``wait_for_image``)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

U8Array = npt.NDArray[np.uint8]


def _pack(rgb: U8Array) -> npt.NDArray[np.uint32]:
    wide = rgb.astype(np.uint32)
    eight, sixteen = np.uint32(8), np.uint32(16)
    packed: npt.NDArray[np.uint32] = (
        wide[..., 0] | (wide[..., 1] << eight) | (wide[..., 2] << sixteen)
    )
    return packed


def find_template(screen: U8Array, template: U8Array) -> tuple[int, int] | None:
    """Top-left ``(x, y)`` of the first exact occurrence of ``template`` in ``screen``.

    Both are ``(h, w, 3)`` uint8 RGB (an alpha channel in the template is ignored).
    Candidates are all positions matching one template pixel; each further pixel filters
    them, rarest-first pixels first, so typical searches touch few pixels.
    """
    th, tw = template.shape[:2]
    sh, sw = screen.shape[:2]
    if th == 0 or tw == 0 or th > sh or tw > sw:
        return None
    s = _pack(screen[:, :, :3])
    t = _pack(template[:, :, :3])
    flat_t = t.reshape(-1)
    # Check template pixels in an order that spreads them out, starting with the rarest.
    _, inverse, counts = np.unique(flat_t, return_inverse=True, return_counts=True)
    order = np.argsort(counts[inverse.reshape(-1)], kind="stable")
    first = int(order[0])
    fy, fx = divmod(first, tw)
    window = s[fy : fy + sh - th + 1, fx : fx + sw - tw + 1]
    ys, xs = np.nonzero(window == flat_t[first])
    for k in order[1:]:
        if ys.size <= 8:  # few candidates left: compare whole windows
            hits = [(int(y), int(x)) for y, x in zip(ys, xs, strict=True)
                    if np.array_equal(s[y : y + th, x : x + tw], t)]  # fmt: skip
            return (min(hits)[1], min(hits)[0]) if hits else None
        dy, dx = divmod(int(k), tw)
        keep = s[ys + dy, xs + dx] == flat_t[k]
        ys, xs = ys[keep], xs[keep]
    if ys.size == 0:
        return None
    best = np.lexsort((xs, ys))[0]
    return int(xs[best]), int(ys[best])
