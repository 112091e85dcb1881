"""Scripted console automation through a real Corral server: typing and screen matching over
VNC (libvirt's openGraphicsFD), on one TCG test guest, through the API and the CLI.

The guest's shell is on ttyS0 (reached here through the API's serial WebSocket); its VGA
console (tty1) shows the kernel log and a heartbeat. Typed keys go to tty1: a ``cat`` there
copies each typed line to ttyS0, so the serial log shows exactly what the guest received. For
screen matching the shell draws a banner on the top text row, kept still by a scrolling region
that starts below it.
"""

from __future__ import annotations

import base64
import io
import json
import re
import secrets
import string
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from corral.errors import OperationTimeout
from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import KernelGuest
from tests.integration.api._support import SerialShell, kernel_vm, wait_log

pytestmark = pytest.mark.integration

NAME = "con-auto"
BANNER = f"CORRAL-BANNER-{secrets.token_hex(4)}"
CELL_HEIGHT = 16  # VGA text mode: 720x400 pixels, 80x25 cells of 9x16
# Scrolling region rows 3-25: rows 1-2 keep still while the heartbeat scrolls the rest.
DRAW_BANNER = rf"printf '\033[3;25r\033[1;1H\033[2K%s\033[25;1H' {BANNER} >/dev/tty0"
CLEAR_BANNER = r"printf '\0337\033[1;1H\033[2K\0338' >/dev/tty0"


def ok(corral: CorralServer, *args: str) -> str:
    done = corral.cli(*args)
    assert done.returncode == 0, f"corral {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def wait_body(template: bytes, timeout_s: float) -> dict[str, Any]:
    return {"image_png_base64": base64.b64encode(template).decode(), "timeout_s": timeout_s}


@pytest.fixture(scope="module")
def client(corral: CorralServer) -> Iterator[httpx.Client]:
    with corral.client() as c:
        yield c


@pytest.fixture(scope="module")
def vm(client: httpx.Client, kernel_guest: KernelGuest) -> Iterator[str]:
    """One booted guest for the whole module (TCG boots are slow)."""
    answer = client.post("/vms", json=kernel_vm(NAME, kernel_guest, disk_gib=None))
    assert answer.status_code == 201, answer.text
    assert client.post(f"/vms/{NAME}/start").status_code == 200
    wait_log(client, NAME, rb"CORRAL-GUEST-BOOTED")
    yield NAME
    client.post(f"/vms/{NAME}/stop")
    client.delete(f"/vms/{NAME}")


@pytest.fixture(scope="module")
def shell(corral: CorralServer, vm: str) -> SerialShell:
    return SerialShell(corral, vm)


@pytest.fixture(scope="module")
def typed_lines(shell: SerialShell) -> None:
    """From now on every line typed on tty1 is copied to ttyS0 (and so to the serial log)."""
    shell.run("(cat /dev/tty1 >/dev/ttyS0 &)")


def typed(client: httpx.Client, name: str, line: str) -> None:
    """Wait until the guest has read exactly ``line`` (a whole line) from its keyboard."""
    try:
        wait_log(client, name, rb"(?:^|\n)" + re.escape(line.encode()) + rb"\r?\n", timeout=30)
    except OperationTimeout:
        tail = client.get(f"/vms/{name}/log", params={"tail_bytes": 2000}).content
        pytest.fail(f"the guest did not read {line!r}; its serial log ends with:\n{tail!r}")


# -- typing -------------------------------------------------------------------------------------


def test_api_types_text_then_presses_keys(client: httpx.Client, vm: str, typed_lines: None) -> None:
    token = f"api-typed-{secrets.token_hex(4)}"
    line = f"{token} Hi, World! ~`!@#$%^&*()_+-=[]{{}}\\|;:'\",.<>/?"
    body = {"text": line + "XYZ", "keys": "backspace backspace backspace enter"}
    answer = client.post(f"/vms/{vm}/console/type", json=body)
    assert answer.status_code == 204, answer.text
    # The three backspaces arrived after the text: the guest read the line without "XYZ".
    typed(client, vm, line)
    entries = client.get("/audit", params={"action": "vm.console.type"}).json()["items"]
    assert entries[0]["target"] == vm and entries[0]["outcome"] == "ok"


def test_cli_types_a_long_line(corral: CorralServer, client: httpx.Client, vm: str,
                               typed_lines: None) -> None:  # fmt: skip
    token = f"cli-typed-{secrets.token_hex(4)}"
    line = token + " " + " ".join([string.ascii_letters + string.digits] * 4)
    out = ok(corral, "vm", "type", vm, line, "--keys", "enter")
    assert out.strip() == f"typed {len(line)} characters and pressed enter on VM {vm}"
    typed(client, vm, line)


# A VGA console that never stands still: QEMU keeps sending updates while keys are typed and
# after the client's half-close. Typing used to fail with a 500 here ("Cannot call write()
# after write_eof()"), 3 times out of 3, on the server as `make run` starts it (uvloop).
START_SCROLLER = (
    "(sh -c 'echo $$ >/tmp/scroller.pid; n=0; "
    "while :; do n=$((n+1)); echo scrolling-$n >/dev/tty0; usleep 2000; done' &)"
)
STOP_SCROLLER = "kill $(cat /tmp/scroller.pid)"


def test_typing_while_the_screen_keeps_changing(
    corral: CorralServer, client: httpx.Client, vm: str, shell: SerialShell, typed_lines: None
) -> None:
    assert "event loop: uvloop" in corral.log_tail(200_000)  # as `make run` serves
    log_start = corral.log_path.stat().st_size
    shell.run(START_SCROLLER)
    try:
        before = client.get(f"/vms/{vm}/screenshot").content
        wait_until(
            lambda: client.get(f"/vms/{vm}/screenshot").content != before,
            10,
            "the VGA console to change",
            interval=0.1,
        )
        for attempt in range(6):
            line = f"scrolling-typed-{attempt}-{secrets.token_hex(3)}"
            answer = client.post(f"/vms/{vm}/console/type", json={"text": line + "\n"})
            assert answer.status_code == 204, answer.text
            # The line is unique: found whole, it arrived whole (the serial shell's prompt may
            # still stand in front of the first one).
            wait_log(client, vm, re.escape(line.encode()) + rb"\r?\n", timeout=30)
        assert "Traceback" not in corral.log_path.read_bytes()[log_start:].decode(errors="replace")
    finally:
        shell.run(STOP_SCROLLER)


def test_typing_needs_a_running_vm(corral: CorralServer, client: httpx.Client, vm: str) -> None:
    assert client.post(f"/vms/{vm}/pause").status_code == 200
    try:
        answer = client.post(f"/vms/{vm}/console/type", json={"text": "x"})
        assert answer.status_code == 409
        assert "paused" in answer.json()["detail"]
        done = corral.cli("vm", "type", vm, "x")
        assert done.returncode == 1
        assert "paused: start it to type on its console" in done.stderr
    finally:
        assert client.post(f"/vms/{vm}/resume").status_code == 200


def test_unknown_keys_are_refused_before_anything_is_typed(client: httpx.Client, vm: str) -> None:
    answer = client.post(f"/vms/{vm}/console/type", json={"text": "x", "keys": "enter ctrl-foo"})
    assert answer.status_code == 422
    assert "keys: key combinations separated by spaces" in answer.json()["detail"]


# -- screen matching ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def banner(client: httpx.Client, vm: str, shell: SerialShell) -> bytes:
    """The banner drawn on the top text row, as a PNG cut from a screenshot."""
    shell.run(DRAW_BANNER)

    def cut() -> bytes | None:
        screen = Image.open(io.BytesIO(client.get(f"/vms/{vm}/screenshot").content))
        band = np.asarray(screen.convert("RGB"))[:CELL_HEIGHT]
        lit = np.nonzero(band.any(axis=(0, 2)))[0]
        # The banner's glyphs: 9-pixel cells, the last one of a glyph row is blank.
        if lit.size == 0 or lit[-1] < 9 * (len(BANNER) - 1):
            return None
        return png(screen.convert("RGB").crop((0, 0, int(lit[-1]) + 1, CELL_HEIGHT)))

    return wait_until(cut, 30, "the banner on the screen", interval=0.2)


def test_cli_finds_a_template_cut_from_a_screenshot(
    corral: CorralServer, vm: str, banner: bytes, tmp_path: Path
) -> None:
    template = tmp_path / "banner.png"
    template.write_bytes(banner)
    out = ok(corral, "vm", "wait-screen", vm, "--image", str(template), "--timeout", "30")
    assert re.fullmatch(rf"found banner\.png on VM {vm} at x=0 y=0 after \d+\.\d s\n", out)
    as_json = ok(corral, "--json", "vm", "wait-screen", vm, "--image", str(template))
    found = json.loads(as_json)
    assert (found["x"], found["y"]) == (0, 0) and 0 <= found["elapsed_s"] < 30


def test_cli_times_out_on_an_image_that_never_appears(
    corral: CorralServer, vm: str, tmp_path: Path
) -> None:
    noise = np.random.default_rng(7).integers(0, 256, (12, 20, 3), dtype=np.uint8)
    template = tmp_path / "noise.png"
    template.write_bytes(png(Image.fromarray(noise)))
    started = time.monotonic()
    done = corral.cli("vm", "wait-screen", vm, "--image", str(template), "--timeout", "3")
    took = time.monotonic() - started
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == ""
    assert f"error: the image (20x12) did not appear on the screen of VM '{vm}' within 3 s" in (
        " ".join(done.stderr.split())
    )
    assert 3 <= took < 20


def test_api_waits_until_the_image_appears(
    client: httpx.Client, vm: str, shell: SerialShell, banner: bytes
) -> None:
    shell.run(CLEAR_BANNER)
    gone = client.post(f"/vms/{vm}/console/wait-screen", json=wait_body(banner, 1))
    assert gone.status_code == 504, gone.text
    assert gone.headers["content-type"] == "application/problem+json"
    assert "did not appear" in gone.json()["detail"]

    answers: list[httpx.Response] = []
    waiter = threading.Thread(
        target=lambda: answers.append(
            client.post(f"/vms/{vm}/console/wait-screen", json=wait_body(banner, 60))
        )
    )
    waiter.start()
    shell.run(DRAW_BANNER)
    waiter.join(timeout=90)
    assert answers, "wait-screen did not answer"
    assert answers[0].status_code == 200, answers[0].text
    found = answers[0].json()
    assert (found["x"], found["y"]) == (0, 0)


def test_a_template_larger_than_the_screen_is_refused(client: httpx.Client, vm: str) -> None:
    wide = png(Image.new("RGB", (721, 8)))
    answer = client.post(f"/vms/{vm}/console/wait-screen", json=wait_body(wide, 5))
    assert answer.status_code == 409
    assert "721x8 pixels but the screen of VM 'con-auto' is 720x400" in answer.json()["detail"]


def test_screenshot_still_works(client: httpx.Client, vm: str, banner: bytes) -> None:
    answer = client.get(f"/vms/{vm}/screenshot")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(answer.content)).size == (720, 400)
