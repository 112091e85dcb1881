"""``corral task …`` and task polling."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from corral.cli.client import CorralClient
from corral.cli.task import POLL_MAX_S, POLL_MIN_S, _bar_values, poll_task
from corral.model.task import TaskInfo
from tests.unit.cli.canned_api import ISO_MAGIC_OFFSET
from tests.unit.cli.conftest import CannedApi, RealApi, Run, cli_command


def _task(api: CannedApi, kind: str, plan: list[dict[str, object]]) -> TaskInfo:
    api.state.task_plans[kind] = plan
    return api.state.new_task(kind, "web1")


def test_wait_shows_progress_and_succeeds(run: Run, api: CannedApi) -> None:
    task = _task(api, "vm.migrate", [
        {"state": "running", "phase": "copying memory", "progress": 0.4},
        {"state": "running", "phase": "switching over", "progress": 0.9},
        {"state": "succeeded", "phase": "done [bold]3/3[/bold]", "progress": 1},
    ])  # fmt: skip
    result = run("task", "wait", task.id)
    assert result.exit_code == 0, result.output
    assert "vm.migrate web1: done [bold]3/3[/bold]" in result.stderr  # server text is not markup
    assert "100%" in result.stderr
    assert f"task {task.id} (vm.migrate web1) succeeded" in result.stdout
    # One GET per plan step (the first one also tells the CLI what the task is).
    assert len(api.requests_to("GET", f"/tasks/{task.id}")) == 3


def test_wait_failed_task_exits_1_with_its_error(run: Run, api: CannedApi) -> None:
    task = _task(api, "vm.migrate", [
        {"state": "running", "progress": 0.05},
        {"state": "failed", "error": "host h2 has 1.2 GiB free, VM web1 needs 2 GiB"},
    ])  # fmt: skip
    result = run("task", "wait", task.id)
    assert result.exit_code == 1
    assert "error: host h2 has 1.2 GiB free, VM web1 needs 2 GiB" in result.stderr
    assert "vm.migrate web1 failed" in result.stderr


def test_wait_json_prints_the_final_task_even_when_it_failed(run: Run, api: CannedApi) -> None:
    task = _task(api, "vm.migrate", [{"state": "failed", "error": "boom: do X"}])
    result = run("task", "wait", task.id, "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["state"] == "failed"
    assert "error: boom: do X" in result.stderr


def test_cancelled_task_is_an_error(run: Run, api: CannedApi) -> None:
    task = _task(api, "vm.migrate", [{"state": "running"}] * 3)
    cancelled = run("task", "cancel", task.id)
    assert cancelled.exit_code == 0, cancelled.output
    assert f"task {task.id}: cancelled" in cancelled.stdout
    result = run("task", "wait", task.id)
    assert result.exit_code == 1
    assert f"task {task.id} (vm.migrate web1) was cancelled" in result.stderr


def test_list_and_show(run: Run, api: CannedApi) -> None:
    task = _task(api, "vm.clone", [{"state": "running", "progress": 0.5, "phase": "copying"}])
    listed = run("task", "list", "--limit", "5")
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.stdout.splitlines() if line.startswith(task.id))
    assert row.split()[:5] == [task.id, "vm.clone", "web1", "running", "50%"]
    assert api.requests_to("GET", "/tasks")[-1][3] == {"limit": "5"}
    shown = run("task", "show", task.id, "--json")
    assert json.loads(shown.stdout)["phase"] == "copying"
    missing = run("task", "show", "task-99")
    assert missing.exit_code == 1 and "error: no task task-99" in missing.stderr


def test_poll_interval_is_bounded(api: CannedApi) -> None:
    task = _task(api, "vm.migrate", [{"state": "running"}] * 6 + [{"state": "succeeded"}])
    sleeps: list[float] = []
    seen: list[str] = []
    with CorralClient(api.url, api.state.token) as client:
        final = poll_task(client, task, lambda t: seen.append(t.state), sleep=sleeps.append)
    assert final.state == "succeeded"
    assert seen[0] == "pending" and seen[-1] == "succeeded"
    assert sleeps[0] == POLL_MIN_S
    assert all(POLL_MIN_S <= s <= POLL_MAX_S for s in sleeps)
    assert sleeps[-1] == POLL_MAX_S


def test_bar_uses_bytes_when_known_else_the_progress_fraction(api: CannedApi) -> None:
    task = api.state.new_task("vm.migrate", "web1")
    running = task.model_copy(update={"state": "running", "progress": 0.4})
    assert _bar_values(running) == (40.0, 100.0, False)
    with_bytes = running.model_copy(update={"bytes_done": 300, "bytes_total": 1200})
    assert _bar_values(with_bytes) == (300.0, 1200.0, True)
    done = running.model_copy(update={"state": "succeeded", "progress": 0.97})
    assert _bar_values(done) == (100.0, 100.0, False)


def test_ctrl_c_stops_waiting_but_not_the_task(api: CannedApi) -> None:
    task = _task(api, "vm.migrate", [{"state": "running", "progress": 0.1}] * 10_000)
    proc = subprocess.Popen(
        cli_command("task", "wait", task.id),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **api.env()},
    )
    try:
        deadline = time.monotonic() + 15
        while len(api.requests_to("GET", f"/tasks/{task.id}")) < 2:
            assert time.monotonic() < deadline, "the CLI never polled the task"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=15)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130
    assert f"stopped waiting; task {task.id} goes on: `corral task wait {task.id}`".encode() in (
        stderr
    )
    assert not api.requests_to("POST", f"/tasks/{task.id}/cancel")


def test_list_says_why_a_task_failed_on_one_line_that_fits(
    run_real: Run, real_api: RealApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    iso = bytearray(64 * 1024)
    iso[ISO_MAGIC_OFFSET : ISO_MAGIC_OFFSET + 5] = b"CD001"
    (tmp_path / "cli-why.iso").write_bytes(bytes(iso))
    # libvirt's test driver cannot upload into a volume: the upload task fails, saying so.
    assert run_real("image", "upload", str(tmp_path / "cli-why.iso"), "--kind", "iso").exit_code
    with real_api.client() as client:
        (task,) = [
            t for t in client.get("/tasks").json()["items"] if t["target"] == "test/cli-why.iso"
        ]
    assert task["state"] == "failed" and "virStorageVolUpload" in task["error"]
    for columns in (80, 200):
        monkeypatch.setenv("COLUMNS", str(columns))
        listed = run_real("task", "list")
        assert listed.exit_code == 0, listed.output
        (line,) = [x for x in listed.stdout.splitlines() if x.startswith(task["id"] + " failed: ")]
        assert len(line) <= columns
        assert "failed: create volume _iso.cli-why.iso for" in line
    assert line.endswith("virStorageVolUpload")  # the whole reason where it fits
