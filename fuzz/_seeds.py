"""Write seed inputs for the harnesses (valid rectangles from the test encoders)."""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

import numpy as np

from tests.unit.rfb import _viewer as viewer
from tests.unit.rfb import _wire as wire


def seeds() -> dict[str, list[bytes]]:
    rng = np.random.default_rng(3)
    img = (rng.integers(0, 3, (20, 30)) * 0x203040).astype(np.uint32)
    size = bytes([30, 20])
    small = bytes([4, 4])
    out: dict[str, list[bytes]] = {
        "rfb_raw": [size + wire.raw(img)],
        "rfb_copyrect": [size + wire.copy_rect(1, 2)],
        "rfb_rre": [small + wire.rre(5, [(7, 0, 0, 2, 2), (9, 1, 1, 3, 3)])],
        "rfb_hextile": [size + wire.hextile(img, m) for m in range(3)],
        "rfb_zrle": [size + wire.zrle(img, zlib.compressobj(), m) for m in range(3)],
        "rfb_tight": [
            size + wire.tight(img, [zlib.compressobj() for _ in range(4)], m) for m in range(3)
        ],
        "rfb_cursor": [small + wire.raw(img[:4, :4]) + b"\xf0" * 4],
        "rfb_desktopsize": [size + b"\x01\0\0\0" + b"\0" * 16],
        "rfb_stream": [
            b"\x00" + wire.handshake(8, 8) + wire.update(wire.rect(0, 0, 2, 2, 0, b"\0" * 16))
        ],
    }
    z = zlib.compressobj()
    data = z.compress(wire.raw(img)) + z.flush(zlib.Z_SYNC_FLUSH)
    out["rfb_zlib"] = [size + len(data).to_bytes(4, "big") + data]
    out["rfb_tightpng"] = [size + b"\x80\x01\x02\x03"]
    out.update(relay_seeds())
    return out


def relay_seeds() -> dict[str, list[bytes]]:
    """noVNC's first messages, then one of every other client message (and each handshake)."""
    every = [
        viewer.key(0xFF0D, True),
        viewer.qemu_key(0xFF54, True, 0xE050),
        viewer.pointer(1, 2, 1),
        viewer.extended_pointer(1, 2, 0x101),
        viewer.cut_text("café"),
        viewer.clipboard_caps(),
        viewer.extended_clipboard(viewer.NOTIFY, viewer.TEXT),
        viewer.clipboard_provide("héllo\nwörld"),
        viewer.continuous_updates(True, 0, 0, 8, 8),
        viewer.fence(0x80000001, b"abc"),
        viewer.xvp(2),
        viewer.set_desktop_size(8, 8),
        viewer.qemu_audio(0),
        viewer.qemu_audio(2, 3, 2, 44100),
    ]
    first = viewer.novnc_first_messages(64, 48)
    return {
        "rfb_client_messages": [
            b"\x00" + first,
            b"\x00" + b"".join(m for m in every if m != every[3]),
            b"\x01" + b"".join(m for m in every if m != every[2]),
        ],
        "rfb_relay_handshake": [
            viewer.handshake(8) + first + every[0],
            viewer.handshake(7, shared=False) + first,
            viewer.handshake(3) + every[2],
        ],
    }


def main(directory: Path) -> None:
    for name, inputs in seeds().items():
        target = directory / name
        target.mkdir(parents=True, exist_ok=True)
        for i, data in enumerate(inputs):
            (target / f"seed-{i}").write_bytes(data)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
