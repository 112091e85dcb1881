"""The console automation routes on libvirt's test driver: every refusal says what to change.

(Typing and screen matching themselves need a real QEMU: tests/integration/api/
test_console_automation.py.)
"""

from __future__ import annotations

import base64
import io
import struct
import zlib
from typing import Any

import pytest
from PIL import Image

from corral.model.auth import Role
from tests.unit.api.conftest import Api

OFF = "con-off"


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _header_only_png(width: int, height: int) -> bytes:
    """A PNG whose header claims a size; no pixel data at all."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IEND", b"")


def _wait(image: bytes | str, timeout_s: float = 5) -> dict[str, Any]:
    encoded = image if isinstance(image, str) else base64.b64encode(image).decode()
    return {"image_png_base64": encoded, "timeout_s": timeout_s}


@pytest.fixture(scope="module")
def shut_off(api: Api) -> str:
    answer = api.client.post(
        # On the test host by name: placement weighs the screen VM another test may have
        # started first, and the test driver's host has little memory to spare.
        "/api/v1/vms",
        json={"name": OFF, "disks": [{"size_gib": 1}], "host": "test"},
        headers=api.headers(),
    )
    assert answer.status_code == 201, answer.text
    return OFF


def _problem(api: Api, path: str, body: dict[str, Any], status: int) -> str:
    answer = api.client.post(f"/api/v1/vms/{path}", json=body, headers=api.headers())
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    detail: str = answer.json()["detail"]
    return detail


def test_typing_on_a_shut_off_vm_is_a_conflict(api: Api, shut_off: str) -> None:
    detail = _problem(api, f"{shut_off}/console/type", {"text": "root"}, 409)
    assert detail == f"VM '{shut_off}' is shutoff: start it to type on its console"
    entries = api.client.get(
        "/api/v1/audit", params={"action": "vm.console.type"}, headers=api.headers()
    ).json()["items"]
    assert entries[0]["target"] == shut_off and entries[0]["outcome"].startswith("error: ")


def test_typing_on_an_unknown_vm_is_not_found(api: Api) -> None:
    _problem(api, "nope/console/type", {"text": "x"}, 404)


def test_a_host_that_cannot_hand_over_the_screen_is_a_host_error(api: Api) -> None:
    # A VM Corral made has a VNC screen, but the test driver hands over no graphics FDs.
    name = "con-on"
    spec = {"name": name, "disks": [{"size_gib": 1}]}
    assert api.client.post("/api/v1/vms", json=spec, headers=api.headers()).status_code == 201
    started = api.client.post(f"/api/v1/vms/{name}/start", headers=api.headers())
    assert started.status_code == 200, started.text
    detail = _problem(api, f"{name}/console/type", {"keys": "enter"}, 502)
    assert "open the screen (VNC) of domain" in detail


def test_a_vm_without_a_screen_is_refused_up_front(api: Api) -> None:
    # The test driver's running domain "test" (adopted) has no graphics device at all.
    detail = _problem(api, "test/console/type", {"keys": "enter"}, 409)
    assert detail.startswith("VM 'test' has no screen (it has no graphics device): use its ")
    shot = api.client.get("/api/v1/vms/test/screenshot", headers=api.headers())
    assert shot.status_code == 409 and shot.json()["detail"] == detail


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "give text to type, keys to press, or both"),
        ({"text": "", "keys": "  "}, "give text to type, keys to press, or both"),
        ({"text": "caf\u00e9"}, "character 'é' at position 3 cannot be typed"),
        ({"text": "a\x1bb"}, "character '\\x1b' at position 1 cannot be typed"),
        ({"text": "x" * 1025}, "at most 1024 characters"),
        ({"text": "x", "keys": "enter ctrl-foo"}, "keys: key combinations separated by spaces"),
        ({"keys": "ctrl-"}, "keys: key combinations separated by spaces"),
        ({"text": "x", "delay": 1}, "unknown field"),
    ],
)
def test_bad_typing_requests(api: Api, shut_off: str, body: dict[str, Any], message: str) -> None:
    assert message in _problem(api, f"{shut_off}/console/type", body, 422)


def _transparent() -> bytes:
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 255))
    image.putpixel((1, 1), (0, 0, 0, 0))
    return _png(image)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_wait("not base64!"), "not valid base64"),
        (_wait(b"GIF89a not a png"), "the template is not a PNG image"),
        (_wait(_png(Image.new("RGB", (4, 4)))[:40]), "the template PNG cannot be decoded"),
        (_wait(_transparent()), "transparent pixels"),
        (_wait(_png(Image.new("L", (4097, 1)))), "at most 4096x4096 pixels"),
        (_wait(_header_only_png(100_000, 100_000)), "at most 4096x4096 pixels"),
        (_wait(_png(Image.new("RGB", (2, 2))), 0), "greater than 0"),
        (_wait(_png(Image.new("RGB", (2, 2))), 601), "less than or equal to 600"),
    ],
    ids=["base64", "gif", "truncated", "transparent", "wide", "bomb", "zero", "long"],
)
def test_bad_templates(api: Api, shut_off: str, body: dict[str, Any], message: str) -> None:
    assert message in _problem(api, f"{shut_off}/console/wait-screen", body, 422)


def test_waiting_on_a_shut_off_vm_is_a_conflict(api: Api, shut_off: str) -> None:
    grey = _png(Image.new("LA", (3, 2), (128, 255)))  # any opaque PNG mode is fine
    detail = _problem(api, f"{shut_off}/console/wait-screen", _wait(grey), 409)
    assert detail == f"VM '{shut_off}' is shutoff: start it to see its screen"


def test_viewers_may_not_use_the_console(api: Api, shut_off: str) -> None:
    for path, body in (("type", {"text": "x"}), ("wait-screen", _wait(_transparent()))):
        answer = api.client.post(
            f"/api/v1/vms/{shut_off}/console/{path}", json=body, headers=api.headers(Role.VIEWER)
        )
        assert answer.status_code == 403
        assert "viewer" in answer.json()["detail"]
