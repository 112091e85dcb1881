"""The same life, through the real ``corral`` CLI: a disk-image guest imported as a task."""

from __future__ import annotations

import json
import os
import sys

import pexpect
import pytest

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import DiskGuest

NAME = "cli-disk"


def ok(corral: CorralServer, *args: str, input: str | None = None) -> str:
    done = corral.cli(*args, input=input)
    assert done.returncode == 0, f"corral {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def disk_vm(corral: CorralServer, disk_guest: DiskGuest) -> str:
    out = ok(
        corral,
        "vm",
        "create",
        NAME,
        "--memory",
        "256M",
        "--disk",
        f"import={disk_guest.disk}",
        "--description",
        "booted from its own disk",
        "--start",
    )
    assert NAME in out
    return NAME


def test_create_imports_the_image_and_boots_from_disk(corral: CorralServer, disk_vm: str) -> None:
    def booted() -> bool:
        return "CORRAL-GUEST-BOOTED source=disk" in ok(corral, "vm", "log", disk_vm)

    wait_until(booted, 90, "the disk guest to boot", interval=0.5)
    tasks = json.loads(ok(corral, "--json", "task", "list"))["items"]
    create = next(t for t in tasks if t["kind"] == "vm.create" and t["target"] == disk_vm)
    assert create["state"] == "succeeded"
    assert create["bytes_total"] and create["bytes_done"] == create["bytes_total"]


def test_list_and_show(corral: CorralServer, disk_vm: str) -> None:
    listing = ok(corral, "vm", "list")
    assert disk_vm in listing and "running" in listing
    shown = json.loads(ok(corral, "--json", "vm", "show", disk_vm))
    assert shown["state"] == "running"
    assert shown["description"] == "booted from its own disk"


def test_console_with_piped_stdin(corral: CorralServer, disk_vm: str) -> None:
    out = ok(corral, "vm", "console", disk_vm, "--linger", "5", input="\necho cli-$((6*7))-piped\n")
    assert "cli-42-piped" in out


def test_console_interactive_on_a_terminal(corral: CorralServer, disk_vm: str) -> None:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "corral.cli.main", "vm", "console", disk_vm],
        env={**corral.env, "TERM": "xterm"},
        timeout=30,
    )
    try:
        # Type only once attached: entering raw mode flushes what was typed before.
        child.expect("corral-heartbeat")
        child.send("\recho tty-$((6*7))-ok\r")
        child.expect("tty-42-ok")
        child.sendcontrol("]")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_screenshot_to_file(corral: CorralServer, disk_vm: str, tmp_path: os.PathLike[str]) -> None:
    target = os.path.join(tmp_path, "screen.png")
    ok(corral, "vm", "screenshot", disk_vm, "-o", target)
    with open(target, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_errors_are_clear_and_exit_non_zero(corral: CorralServer) -> None:
    done = corral.cli("vm", "start", "no-such-vm")
    assert done.returncode == 1
    assert "no-such-vm" in done.stderr
    bad = corral.cli("vm", "create", "bad name", "--disk", "size=1G")
    assert bad.returncode != 0
    assert "1-63 characters" in bad.stderr


def test_shutdown_and_delete(corral: CorralServer, disk_vm: str) -> None:
    ok(corral, "vm", "shutdown", disk_vm, "--timeout", "60")
    assert json.loads(ok(corral, "--json", "vm", "show", disk_vm))["state"] == "shutoff"
    ok(corral, "vm", "delete", disk_vm, "--delete-disks", "--yes")
    assert corral.cli("vm", "show", disk_vm).returncode == 1
    audit = ok(corral, "audit", "--action", "vm.delete")
    assert disk_vm in audit
