"""``corral vm console`` over the WebSocket, as a real process (pipes and a pseudo-terminal)."""

from __future__ import annotations

import os
import select
import subprocess
import time

import pexpect
import pytest

from tests.unit.cli.canned_api import vm_info
from tests.unit.cli.conftest import CannedApi, Run, cli_command

TIMEOUT_S = 15


def _env(api: CannedApi) -> dict[str, str]:
    return {**os.environ, **api.env()}


def _read_until(proc: subprocess.Popen[bytes], needle: bytes) -> bytes:
    """Read the process's stdout until ``needle`` shows up (bounded)."""
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + TIMEOUT_S
    while needle not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{needle!r} not seen; got {seen!r}")
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                raise AssertionError(f"stdout closed before {needle!r}; got {seen!r}")
            seen += chunk
    return seen


def _wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _spawn(api: CannedApi, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cli_command("vm", "console", *args),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(api),
    )


def test_pipe_mode_relays_both_ways_and_ends_with_stdin(api: CannedApi) -> None:
    api.state.vms = {"web1": vm_info("web1")}
    proc = _spawn(api, "web1", "--linger", "0")
    assert proc.stdin is not None
    try:
        _read_until(proc, b"serial console of web1\r\n")
        proc.stdin.write(b"uname -a\n")
        proc.stdin.flush()
        _read_until(proc, b"guest:UNAME -A\n")
        proc.stdin.close()
        assert proc.wait(timeout=TIMEOUT_S) == 0
    finally:
        proc.kill()
        proc.wait()
    assert api.state.serial_received == b"uname -a\n"


def test_ctrl_bracket_in_the_input_quits(api: CannedApi) -> None:
    api.state.vms = {"web1": vm_info("web1")}
    proc = _spawn(api, "web1")
    assert proc.stdin is not None
    try:
        _read_until(proc, b"serial console of web1")
        proc.stdin.write(b"ls\x1dthis is never sent")
        proc.stdin.flush()
        # stdin stays open: only the escape byte can end the session.
        assert proc.wait(timeout=TIMEOUT_S) == 0
    finally:
        proc.kill()
        proc.wait()
    _wait_for(lambda: api.state.serial_received == b"ls", "the bytes before Ctrl-]")


def test_server_closing_with_a_reason_is_an_error(api: CannedApi) -> None:
    api.state.vms = {"web1": vm_info("web1")}
    api.state.serial_close = (4409, "VM web1 was shut off")
    proc = _spawn(api, "web1")
    assert proc.stdin is not None
    try:
        _read_until(proc, b"serial console of web1")
        proc.stdin.write(b"x")
        proc.stdin.flush()
        assert proc.wait(timeout=TIMEOUT_S) == 1
        assert proc.stderr is not None
        assert b"error: VM web1 was shut off" in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()


def test_tty_mode_is_raw_and_leaves_with_ctrl_bracket(api: CannedApi) -> None:
    api.state.vms = {"web1": vm_info("web1")}
    argv = cli_command("vm", "console", "web1")
    child = pexpect.spawn(argv[0], list(argv[1:]), env=_env(api), timeout=TIMEOUT_S)
    try:
        child.expect_exact("Escape character is ^] (Ctrl + ])")
        child.expect_exact("serial console of web1")
        # Raw mode: a lone keystroke goes out at once, without waiting for Enter, and the
        # terminal does not echo it locally (the only "q" we read back is the guest's).
        child.send("q")
        child.expect_exact("guest:Q")
        child.sendcontrol("]")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert api.state.serial_received == b"q"


@pytest.mark.parametrize(
    ("token", "vm", "message"),
    [
        ("wrong", "web1", "error: not logged in or token revoked: run `corral login`"),
        (None, "nope", "error: no VM named nope"),
        (None, "closes-early", "error: the console of VM closes-early was refused (HTTP 403)"),
    ],
)
def test_refused_console_reports_the_api_error(
    run: Run, api: CannedApi, token: str | None, vm: str, message: str
) -> None:
    api.state.vms = {"web1": vm_info("web1")}
    args = ["--token", token] if token else []
    result = run(*args, "vm", "console", vm)
    assert result.exit_code == 1
    assert message in result.stderr
