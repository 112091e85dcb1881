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

from ._qemu import QMP, SerialShell

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
        await shell.expect(b"corral-heartbeat 2")
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
