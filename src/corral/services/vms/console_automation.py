"""Scripted console automation over VNC: type text, press keys, wait for an image on screen.

Each call opens its own VNC session from ``VmScreenSource`` (libvirt's hand-over on a local
host, VNC over TLS on a remote one), does its work and closes it. Console input takes no per-VM
operation lock: typing and watching the screen must keep working while a long operation (a
shutdown waiting for the guest, a snapshot) runs, and they change nothing Corral manages; the
VM's state is checked instead.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
import warnings
from collections.abc import AsyncIterator, Collection, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial

import numpy as np
import numpy.typing as npt
from PIL import Image

from corral.errors import Conflict, HostError, InvalidRequest, OperationTimeout
from corral.model.console import ScreenMatch, TypeRequest
from corral.model.vm import VmState
from corral.rfb import LocalProtocolError, RFBClient, RFBError, RFBTimeout
from corral.services.vms.screen_source import VIEWING_STATES, VmScreenSource

U8Array = npt.NDArray[np.uint8]
log = logging.getLogger(__name__)

#: Bound on waiting for the server to take the last keys (after the half-close).
FINISH_INPUT_TIMEOUT_S = 10.0
#: Typing pace. QEMU's VNC server passes key events to the guest one per ``key-delay-ms``
#: (10 ms by default) and queues only about 340 of them, dropping the rest (a dropped release
#: leaves Shift held down). So input goes in bursts of at most ``BURST_EVENTS`` key events, each
#: followed by a pause long enough for QEMU to pass the burst on.
BURST_EVENTS = 64
EVENT_PACE_S = 0.011
#: Largest template side in pixels: bigger than any screen QEMU's VGA devices show.
MAX_TEMPLATE_SIDE = 4096
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TYPING_STATES = (VmState.RUNNING,)


def decode_template(png: bytes) -> U8Array:
    """The template as ``(h, w, 3)`` RGB, or ``InvalidRequest`` saying what is wrong with it."""
    if not png.startswith(_PNG_SIGNATURE):
        raise InvalidRequest(
            "the template is not a PNG image: send a PNG file, e.g. a region cropped from "
            "`corral vm screenshot`"
        )
    try:
        with warnings.catch_warnings():
            # Pillow only warns below twice its pixel limit; we want a clean refusal.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(png), formats=["PNG"]) as image:
                _check_size(*image.size)
                rgba = np.asarray(image.convert("RGBA"))
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise InvalidRequest(_too_large()) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidRequest(
            f"the template PNG cannot be decoded ({exc}): send a valid PNG file"
        ) from None
    if not (rgba[..., 3] == 255).all():
        raise InvalidRequest(
            "the template has transparent pixels, but matching compares every pixel exactly: "
            "send an opaque crop of a screenshot"
        )
    return np.ascontiguousarray(rgba[..., :3])


def _too_large() -> str:
    return (
        f"the template is too large: at most {MAX_TEMPLATE_SIDE}x{MAX_TEMPLATE_SIDE} pixels; "
        "crop a small distinctive region of the screen"
    )


def _check_size(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise InvalidRequest("the template PNG has no pixels")
    if width > MAX_TEMPLATE_SIDE or height > MAX_TEMPLATE_SIDE:
        raise InvalidRequest(_too_large())


@contextmanager
def _map_rfb_errors(name: str) -> Iterator[None]:
    """``corral.rfb`` errors become Corral errors at this boundary."""
    try:
        yield
    except RFBTimeout as exc:
        raise OperationTimeout(
            f"the screen of VM {name!r} did not answer in time ({exc.message}): the host may "
            "be overloaded; try again"
        ) from exc
    except RFBError as exc:
        raise HostError(f"the screen (VNC) of VM {name!r} failed: {exc.message}") from exc
    except (OSError, RuntimeError) as exc:
        # The socket layer under corral.rfb: whatever it raises leaves as Corral's own error
        # (logged with its traceback, since it means a bug or an unexpected host failure).
        log.exception("VNC session of VM %s failed", name)
        raise HostError(f"the screen (VNC) of VM {name!r} failed: {exc}") from exc


async def _paced_input(client: RFBClient, text: str, combos: list[str]) -> None:
    steps = [(partial(client.type_text, char), RFBClient.key_events(char)) for char in text]
    steps += [(partial(client.press, c), RFBClient.key_events(combos=[c])) for c in combos]
    burst = 0
    for send, events in steps:
        if burst + events > BURST_EVENTS:
            await asyncio.sleep(burst * EVENT_PACE_S)
            burst = 0
        await send()
        burst += events


class VmConsole:
    """Keyboard input and screen matching on a VM's display."""

    def __init__(self, source: VmScreenSource) -> None:
        self._source = source

    @asynccontextmanager
    async def _screen(
        self, name: str, states: Collection[VmState], purpose: str
    ) -> AsyncIterator[RFBClient]:
        with _map_rfb_errors(name):
            client = await self._source.client(name, states, purpose)
        try:
            yield client
        finally:
            await client.close()

    async def type_text(self, name: str, req: TypeRequest) -> None:
        """Type ``req.text``, then press each of ``req.keys``. Returns once QEMU has every key
        event (it passes the last ones on to the guest within about a second)."""
        combos = req.combos()
        try:
            RFBClient.key_events(req.text, combos)
        except LocalProtocolError as exc:
            raise InvalidRequest(exc.message) from None
        async with self._screen(name, _TYPING_STATES, "type on its console") as client:
            with _map_rfb_errors(name):
                await _paced_input(client, req.text, combos)
                await client.finish_input(timeout=FINISH_INPUT_TIMEOUT_S)

    async def wait_screen(self, name: str, template_png: bytes, timeout_s: float) -> ScreenMatch:
        """Wait until the PNG ``template_png`` appears on the screen, pixel for pixel."""
        # Decoding up to 4096x4096 pixels takes a while: not in the event loop.
        template = await asyncio.to_thread(decode_template, template_png)
        started = time.monotonic()
        async with self._screen(name, VIEWING_STATES, "see its screen") as client:
            height, width = template.shape[:2]
            if width > client.width or height > client.height:
                # A well-formed template that does not fit this VM's screen as it is now.
                raise Conflict(
                    f"the template is {width}x{height} pixels but the screen of VM {name!r} is "
                    f"{client.width}x{client.height}: crop a smaller region of a screenshot"
                )
            with _map_rfb_errors(name):
                try:
                    x, y = await client.wait_for_image(template, timeout=timeout_s)
                except RFBTimeout:
                    raise OperationTimeout(
                        f"the image ({width}x{height}) did not appear on the screen of VM "
                        f"{name!r} within {timeout_s:g} s: check that it was cut from this VM's "
                        f"screen at its current size (`corral vm screenshot {name}`), or wait "
                        "longer"
                    ) from None
        return ScreenMatch(x=x, y=y, elapsed_s=round(time.monotonic() - started, 3))
