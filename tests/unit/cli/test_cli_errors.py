"""How failures look: exit codes, ``error: …`` lines, and nothing secret on screen.

Against the real app, except what it cannot be made to answer here (canned, its answers
checked against /openapi.json): a 422 with several field errors, a detail that repeats its
field error, an answer that breaks the contract, and a serial log that grows (the test
driver has none)."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.unit.cli.canned_api import vm_info
from tests.unit.cli.conftest import CannedApi, RealApi, Run, cli_command

TIMEOUT_S = 15


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_says_what_to_do(run_real: Run, real_api: RealApi) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    result = run_real("--url", url, "vm", "list")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: cannot reach Corral at {url}: is `make run` running?"


def test_validation_errors_list_the_fields(run: Run, api: CannedApi) -> None:
    result = run("vm", "create", "invalid422", "--disk", "size=1G")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: invalid VM spec",
        "  disks.0.size_gib: must be at most 65536",
        "  vcpus: host local has only 2 CPUs",
    ]


def test_field_errors_already_in_the_detail_are_not_repeated(run: Run, api: CannedApi) -> None:
    # The canned answer: detail "password: needs a digit", errors [{password: needs a digit}].
    result = run("user", "add", "dave", "--password-stdin", input="x" * 12 + "\n")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == ["error: password: needs a digit"]


def test_answer_that_breaks_the_contract_is_reported(run: Run, api: CannedApi) -> None:
    result = run("host", "show", "legacy-shape")
    assert result.exit_code == 1
    assert "GET /api/v1/hosts/legacy-shape answered something that is not a HostInfo" in (
        result.stderr
    )


def test_usage_errors_exit_2(run_real: Run, real_api: RealApi) -> None:
    assert run_real("vm", "show").exit_code == 2
    assert run_real("vm", "frobnicate", "x").exit_code == 2
    assert run_real("task", "list", "--limit", "0").exit_code == 2
    assert run_real("vm", "shutdown", "x", "--timeout", "-1").exit_code == 2
    assert not real_api.requests


def test_token_is_never_printed(run_real: Run, real_api: RealApi) -> None:
    secret = real_api.token
    outputs = [
        run_real("vm", "show", "nope").output,
        run_real("--token", "bad-" + secret, "vm", "list").output,
        run_real("--url", f"http://127.0.0.1:{_closed_port()}", "vm", "list").output,
        run_real("whoami").output,
        run_real("--help").output,
    ]
    for output in outputs:
        assert secret not in output


def test_bad_ca_cert_file_is_reported(run_real: Run, real_api: RealApi, tmp_path: Path) -> None:
    result = run_real("--ca-cert", str(tmp_path / "missing.pem"), "vm", "list")
    assert result.exit_code == 1
    assert "cannot use CA certificate" in result.stderr


def test_python_dash_m_runs_the_cli(real_api: RealApi) -> None:
    with real_api.client() as client:
        made = client.post("/vms", json={"name": "cli-listed", "disks": [{"size_gib": 1}]})
        assert made.status_code == 201, made.text
        try:
            done = subprocess.run(
                cli_command("vm", "list"),
                env={**os.environ, **real_api.env()},
                capture_output=True,
                timeout=TIMEOUT_S,
                check=False,
            )
        finally:  # the test driver's domains outlive the app
            client.delete("/vms/cli-listed", params={"delete_disks": True})
    assert done.returncode == 0, done.stderr
    (row,) = [line for line in done.stdout.splitlines() if line.startswith(b"cli-listed ")]
    assert row.split()[:3] == [b"cli-listed", b"test", b"shutoff"]


def _read_until(proc: subprocess.Popen[bytes], needle: bytes) -> bytes:
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + TIMEOUT_S
    while needle not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{needle!r} not seen; got {seen!r}"
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            assert chunk, f"stdout closed before {needle!r}; got {seen!r}"
            seen += chunk
    return seen


def test_log_follow_prints_new_output_until_interrupted(api: CannedApi) -> None:
    api.state.vms = {"web1": vm_info("web1")}
    api.state.logs["web1"] = bytearray(b"boot 1\nheartbeat 1\n")
    proc = subprocess.Popen(
        cli_command("vm", "log", "web1", "--follow", "--tail", "1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **api.env()},
    )
    try:
        first = _read_until(proc, b"heartbeat 1\n")
        assert b"boot" not in first  # --tail 1 keeps only the last line
        api.state.logs["web1"] += b"heartbeat 2\n"
        _read_until(proc, b"heartbeat 2\n")
        api.state.logs["web1"] = bytearray(b"boot 2\n")  # VM restarted: new, shorter log
        _read_until(proc, b"boot 2\n")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=TIMEOUT_S) == 0
    finally:
        proc.kill()
        proc.wait()
