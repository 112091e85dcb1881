"""corral.rfb against QEMU's VNC server, a real peer: every encoding QEMU offers, input, images."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from corral.rfb import Encoding, RFBClient, RFBTimeout
from tests.integration.rfb._qemu import QMP, SerialShell

pytestmark = pytest.mark.integration

ENCODINGS = [
    Encoding.RAW,
    Encoding.HEXTILE,
    Encoding.ZLIB,
    Encoding.ZRLE,
    Encoding.TIGHT,
    Encoding.TIGHT_PNG,
]
PSEUDO = (Encoding.DESKTOP_SIZE, Encoding.EXTENDED_DESKTOP_SIZE, Encoding.LAST_RECT)


async def _booted(qmp_socket: Path) -> None:
    shell = await SerialShell.connect(qmp_socket)
    try:
        await shell.expect(b"corral-heartbeat ")  # (a fresh connection sees new lines only)
    finally:
        await shell.close()


async def _matching_screenshot(
    client: RFBClient, qmp: QMP, tmp_path: Path
) -> tuple[npt.NDArray[np.uint8], list[npt.NDArray[np.uint8]]]:
    """A client screenshot and the QEMU screendumps taken just before and after it.

    The guest is paused, but QEMU still blinks the text cursor and its VNC server refreshes its
    copy of the screen lazily, so retry (bounded) until the client matches a screendump.
    """
    img = np.zeros((0, 0, 3), np.uint8)
    refs: list[npt.NDArray[np.uint8]] = []
    async with asyncio.timeout(30):
        while True:
            before = await qmp.screendump(tmp_path / "before.ppm")
            img = await client.screenshot()
            after = await qmp.screendump(tmp_path / "after.ppm")
            refs = [before, after]
            if any(np.array_equal(img, ref) for ref in refs):
                return img, refs
            await asyncio.sleep(0.2)  # poll interval of a bounded retry


@pytest.mark.parametrize("encoding", ENCODINGS, ids=lambda e: e.name.lower())
async def test_decoded_framebuffer_equals_qemu_screendump(
    qemu_guest: tuple[Path, Path], tmp_path: Path, encoding: Encoding
) -> None:
    vnc, qmp_socket = qemu_guest
    await _booted(qmp_socket)
    qmp = await QMP.connect(qmp_socket)
    await qmp.execute("stop")
    try:
        async with await RFBClient.connect_unix(str(vnc), encodings=(encoding, *PSEUDO)) as c:
            img, refs = await _matching_screenshot(c, qmp, tmp_path)
            used = {r.encoding for r in c.last_update_rects}
    finally:
        await qmp.execute("cont")
        await qmp.close()
    assert img.shape == refs[0].shape
    assert img.any(), "the guest's console should not be black"
    assert used == {encoding}


TYPED = "Hello, World! 0123456789 -=[];'`\\,./ ~!@#$%^&*()_+{}|:\"<>? abcXYZ"


@pytest.mark.parametrize("qemu_keys", [True, False], ids=["qemu-scancodes", "keysyms"])
async def test_type_text_reaches_the_guest(qemu_guest: tuple[Path, Path], qemu_keys: bool) -> None:
    vnc, qmp_socket = qemu_guest
    await _booted(qmp_socket)
    shell = await SerialShell.connect(qmp_socket)
    out = f"/tmp/typed-{int(qemu_keys)}"
    encodings = (Encoding.RAW, Encoding.QEMU_EXTENDED_KEY_EVENT) if qemu_keys else (Encoding.RAW,)
    try:
        # One reader of tty1 at a time: a reader left by an earlier test would take the line.
        await shell.run(f"killall cat 2>/dev/null; (cat /dev/tty1 > {out} &)")
        async with await RFBClient.connect_unix(str(vnc), encodings=encodings) as client:
            await client.screenshot()
            assert client.conn.server_supports_qemu_key_events is qemu_keys
            await client.type_text(TYPED + "\n")
            async with asyncio.timeout(30):
                while True:
                    output = await shell.run(f"cat {out}")
                    if TYPED.encode() in output:
                        break
                    await asyncio.sleep(0.2)  # poll interval of a bounded wait
    finally:
        await shell.close()


async def test_screenshot_png_and_wait_for_image(qemu_guest: tuple[Path, Path]) -> None:
    vnc, qmp_socket = qemu_guest
    await _booted(qmp_socket)
    qmp = await QMP.connect(qmp_socket)
    await qmp.execute("stop")  # a still screen, so a crop of it stays on it
    try:
        async with await RFBClient.connect_unix(str(vnc)) as client:
            png = await client.screenshot_png()
            screen = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
            # (QEMU keeps blinking the text cursor, so the live framebuffer may differ by it.)
            assert screen.shape == (client.height, client.width, 3)
            # A template of some text on the console is found where it was cut from (or at an
            # identical earlier spot).
            ys, xs = np.nonzero(screen.any(axis=2))
            y, x = int(ys[0]), int(xs[0])
            template = screen[y : y + 16, x : x + 40].copy()
            fx, fy = await client.wait_for_image(template, timeout=10)
            assert np.array_equal(screen[fy : fy + 16, fx : fx + 40], template)
            assert (fy, fx) <= (y, x)
            noise = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
            with pytest.raises(RFBTimeout):
                await client.wait_for_image(noise, timeout=1)
    finally:
        await qmp.execute("cont")
        await qmp.close()
