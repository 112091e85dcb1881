"""The web UI in a real browser (Debian's Chromium, driven by Playwright) against the real
server with a real TCG guest: log in, create a VM through the form, watch it run, use its
console like an administrator would, and check that a viewer can watch but change nothing.

The guest's shell is on its serial port; what its VGA console's keyboard receives (tty1) is
copied to the serial port, so the serial log shows exactly which keys reached the guest.
Each test leaves the guest as the next one expects (tests run in file order).
"""

from __future__ import annotations

import base64
import io
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, expect

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import DiskGuest
from tests.e2e.conftest import log_in, new_context, save
from tests.integration.api._support import SerialShell, serial_log, wait_log

pytestmark = pytest.mark.integration

VM = "e2e-web"
VIEWER = f"e2e-viewer-{secrets.token_hex(2)}"
VIEWER_PASSWORD = "e2e-viewer-password-42"
COPY_KEYBOARD = "(cat /dev/tty1 >/dev/ttyS0 &)"


@pytest.fixture(scope="module")
def api(corral: CorralServer) -> Iterator[httpx.Client]:
    with corral.client() as client:
        yield client


@pytest.fixture(scope="module")
def admin(browser: Browser, corral: CorralServer) -> Iterator[BrowserContext]:
    context = new_context(browser, corral)
    page = context.new_page()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))
    save(page, "login")
    log_in(page, "admin", corral.admin_password)
    page.close()
    yield context
    context.close()


@pytest.fixture(scope="module")
def shell(corral: CorralServer) -> SerialShell:
    return SerialShell(corral, VM)


def _canvas_rgb(page: Page) -> np.ndarray:
    data_url = page.evaluate("() => document.querySelector('#screen canvas').toDataURL()")
    png = base64.b64decode(data_url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def _server_rgb(api: httpx.Client) -> np.ndarray:
    shot = api.get(f"/vms/{VM}/screenshot")
    assert shot.status_code == 200, shot.text
    return np.asarray(Image.open(io.BytesIO(shot.content)).convert("RGB"))


def _typed(api: httpx.Client, text: str, start: int = 0) -> None:
    wait_log(api, VM, re.escape(text.encode()) + rb"\r?\n", timeout=45, start=start)


# -- pages and live updates -----------------------------------------------------------------


def test_create_a_vm_through_the_form_and_watch_it_run(
    admin: BrowserContext, disk_guest: DiskGuest
) -> None:
    page = admin.new_page()
    page.goto("/vms/new")
    page.fill("input[name=name]", "bad name")
    page.click("[data-testid=create-vm]")
    expect(page.locator("[data-testid='error-name']")).to_contain_text("1-63 characters")
    save(page, "vm-new")
    page.fill("input[name=name]", VM)
    page.fill("input[name=memory_mib]", "256")
    page.select_option("select[name=disk_source]", "import")
    page.fill("input[name=disk_image]", str(disk_guest.disk))
    page.select_option("select[name=network]", "user")
    page.check("[data-testid=cdrom-drive]")
    page.check("input[name=start]")
    page.click("[data-testid=create-vm]")
    expect(page.locator("[data-testid=create-task]")).to_be_visible()

    page.goto("/")
    # A marker that a reload would wipe: the state must change by itself (SSE).
    page.evaluate("() => { window.__notReloaded = true; }")
    row = page.locator(f"tr[data-vm='{VM}'] [data-testid=vm-state]")
    expect(row).to_have_text("running", timeout=120_000)
    assert page.evaluate("() => window.__notReloaded") is True
    save(page, "dashboard")
    page.goto(f"/vms/{VM}")
    expect(page.locator("[data-testid=vm-state]").first).to_have_text("running")
    save(page, "vm")
    page.close()


def test_every_main_page_renders(admin: BrowserContext) -> None:
    page = admin.new_page()
    for path, name, text in [
        ("/tasks", "tasks", "vm.create"),
        ("/audit", "audit", "vm.create"),
        ("/users", "users", "admin"),
        ("/tokens", "tokens", "local-cli"),
        ("/images", "images", "Images"),
        ("/power", "power", "Estimated power"),
    ]:
        page.goto(path)
        expect(page.locator("main")).to_contain_text(text)
        save(page, name)
    # The Power page: the one local host with its estimate, the policy's mode, and the plots
    # (server-side SVG, allowed by the CSP) for the period chosen.
    page.goto("/power?hours=6")
    expect(page.locator("[data-testid=power-mode]")).to_have_text("manual")
    expect(page.locator("[data-testid=power-hosts] tbody tr")).to_have_count(1)
    expect(page.locator("[data-testid=power-hosts]")).to_contain_text("local")
    # Samples come every 10 s (the first after two readings): reload until both plots have some.
    deadline = time.monotonic() + 60
    while page.locator("[data-testid=chart]").count() < 2:
        assert time.monotonic() < deadline, "no utilisation samples plotted within 60 s"
        page.wait_for_timeout(1000)
        page.reload()
    expect(page.locator("[data-testid=chart]").first).to_have_attribute("role", "img")
    save(page, "power-plots")
    expect(page.locator("main")).to_contain_text("The last 6 hours")
    page.close()


# -- the VNC console ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def console(admin: BrowserContext, api: httpx.Client, shell: SerialShell) -> Iterator[Page]:
    wait_log(api, VM, rb"CORRAL-GUEST-BOOTED source=disk", timeout=120)
    shell.run(COPY_KEYBOARD)
    page = admin.new_page()
    page.goto(f"/vms/{VM}/console")
    expect(page.locator("[data-testid=console-status]")).to_have_text("connected")
    yield page
    page.close()


def test_the_console_shows_the_guests_screen(console: Page, api: httpx.Client) -> None:
    # The guest prints a heartbeat every second: compare a canvas and a screenshot taken close
    # together, until a pair agrees.
    def same_picture() -> float | None:
        canvas = _canvas_rgb(console)
        server = _server_rgb(api)
        if canvas.shape != server.shape:
            return None
        equal = float((canvas == server).all(axis=2).mean())
        return equal if equal > 0.995 else None

    wait_until(same_picture, 30, "the canvas to show the guest's screen", interval=0.2)
    save(console, "console")


def test_keys_typed_on_the_console_reach_the_guest(console: Page, api: httpx.Client) -> None:
    line = f"e2e-typed-{secrets.token_hex(3)}"
    console.click("#screen canvas")
    console.keyboard.type(line)
    console.keyboard.press("Enter")
    _typed(api, line)


def test_paste_as_keystrokes(console: Page, api: httpx.Client) -> None:
    line = f"e2e-pasted-{secrets.token_hex(3)}"
    console.click("#clipboard-panel summary")
    console.fill("[data-testid=clipboard-text]", line + "\n")
    console.click("[data-testid=type-clipboard]")
    _typed(api, line)


def test_full_screen_toggles(console: Page) -> None:
    console.click("[data-testid=fullscreen]")
    expect(console.locator("#console:fullscreen")).to_have_count(1)
    save(console, "console-full-screen")
    console.click("[data-testid=fullscreen]")  # the toolbar stays in full screen
    expect(console.locator("#console:fullscreen")).to_have_count(0)


def test_ctrl_alt_del_reaches_the_guest(
    console: Page, api: httpx.Client, shell: SerialShell
) -> None:
    # The guest reboots at once on Ctrl-Alt-Del (the kernel's reaction when told so).
    shell.run("echo 1 >/proc/sys/kernel/ctrl-alt-del")
    start = len(serial_log(api, VM))
    console.click("[data-testid=ctrl-alt-del]")
    wait_log(api, VM, rb"CORRAL-GUEST-BOOTED", timeout=120, start=start)
    shell.run(COPY_KEYBOARD)  # the copy ended with the reboot


def test_the_console_reconnects_after_its_connection_is_killed(
    console: Page, corral: CorralServer, api: httpx.Client
) -> None:
    def opened() -> int:
        entries = api.get("/audit", params={"action": "vm.console.vnc", "limit": 200}).json()[
            "items"
        ]
        return sum(1 for e in entries if e["outcome"] == "ok")

    before = opened()
    console.evaluate("() => { window.__notReloaded = true; }")
    # Kill every TCP connection to the server (the console's WebSocket among them), as a
    # flaky network or a restarted proxy in front of Corral would.
    killed = subprocess.run(
        ["ss", "-K", "dst", "127.0.0.1", "dport", "=", str(corral.port)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "ESTAB" in killed.stdout
    wait_until(lambda: opened() > before, 30, "the console to open a new session")
    expect(console.locator("[data-testid=console-status]")).to_have_text("connected")
    assert console.evaluate("() => window.__notReloaded") is True
    line = f"e2e-after-reconnect-{secrets.token_hex(3)}"
    console.click("#screen canvas")
    console.keyboard.type(line)
    console.keyboard.press("Enter")
    _typed(api, line)


def test_dropping_an_iso_attaches_it(console: Page, api: httpx.Client, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "hello.txt").write_text("dropped from a browser\n")
    iso = tmp_path / "dropped.iso"
    subprocess.run(
        ["genisoimage", "-quiet", "-r", "-V", "E2EDROP", "-o", str(iso), str(tree)], check=True
    )
    data = base64.b64encode(iso.read_bytes()).decode()
    transfer = console.evaluate_handle(
        """([name, b64]) => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, {type: "application/x-iso9660-image"}));
            return dt;
        }""",
        ["dropped.iso", data],
    )
    console.dispatch_event("#screen", "dragenter", {"dataTransfer": transfer})
    expect(console.locator("#screen.dropping")).to_have_count(1)
    console.dispatch_event("#screen", "drop", {"dataTransfer": transfer})
    expect(console.locator("#upload[data-state=done]")).to_have_count(1, timeout=60_000)
    save(console, "console-dropped-iso")
    vm = api.get(f"/vms/{VM}").json()
    cdroms = [d for d in vm["disks"] if d["device"] == "cdrom"]
    assert len(cdroms) == 1 and cdroms[0]["path"].endswith("dropped.iso")
    image = api.get("/images/dropped.iso").json()
    assert image["size_bytes"] == iso.stat().st_size and image["used_by"] == [VM]


def test_the_serial_console_in_the_browser(admin: BrowserContext, api: httpx.Client) -> None:
    page = admin.new_page()
    page.goto(f"/vms/{VM}/terminal")
    expect(page.locator("[data-testid=terminal-status]")).to_have_text("connected")
    page.click("[data-testid=terminal]")
    page.keyboard.type("echo xterm-$((6*7))")
    page.keyboard.press("Enter")
    wait_log(api, VM, rb"xterm-42", timeout=30)
    expect(page.locator("[data-testid=terminal]")).to_contain_text("xterm-42")
    save(page, "terminal")
    page.close()


# -- a viewer, and logging out --------------------------------------------------------------


@pytest.fixture(scope="module")
def viewer(browser: Browser, corral: CorralServer, api: httpx.Client) -> Iterator[BrowserContext]:
    made = api.post("/users", json={"name": VIEWER, "password": VIEWER_PASSWORD, "role": "viewer"})
    assert made.status_code == 201, made.text
    context = new_context(browser, corral)
    page = context.new_page()
    log_in(page, VIEWER, VIEWER_PASSWORD)
    page.close()
    yield context
    context.close()


def test_a_viewer_sees_the_screen_but_changes_nothing(
    viewer: BrowserContext, api: httpx.Client
) -> None:
    page = viewer.new_page()
    page.goto(f"/vms/{VM}/console")
    expect(page.locator("[data-testid=console-status]")).to_have_text("connected (view only)")
    expect(page.locator("[data-testid=ctrl-alt-del]")).to_have_count(0)
    assert _canvas_rgb(page).shape == _server_rgb(api).shape
    sneaky = f"e2e-viewer-{secrets.token_hex(3)}"
    page.click("#screen canvas")
    page.keyboard.type(sneaky)
    page.keyboard.press("Enter")
    # Keys the viewer typed before an operator's would have reached the guest first.
    marker = f"e2e-after-viewer-{secrets.token_hex(3)}"
    assert api.post(f"/vms/{VM}/console/type", json={"text": marker + "\n"}).status_code == 204
    _typed(api, marker)
    assert sneaky.encode() not in serial_log(api, VM)
    # No way to act from the VM page either.
    page.goto(f"/vms/{VM}")
    expect(page.locator("[data-testid=action-stop]")).to_have_count(0)
    save(page, "vm-as-viewer")
    page.close()


def test_logging_out_closes_the_console(admin: BrowserContext) -> None:
    console = admin.new_page()
    console.goto(f"/vms/{VM}/console")
    expect(console.locator("[data-testid=console-status]")).to_have_text("connected")
    other = admin.new_page()
    other.goto("/")
    other.click("[data-testid=logout]")
    expect(other).to_have_url(re.compile(r"/login$"))
    # The server ends the session's console at once; the page then finds its session gone.
    expect(console).to_have_url(re.compile(r"/login"), timeout=30_000)
    other.goto("/")
    expect(other).to_have_url(re.compile(r"/login"))
