"""``corral vm type`` and ``corral vm wait-screen`` against a small canned console API (the
test driver has no screen to type on); its answers are checked against the real /openapi.json."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from typer.testing import CliRunner, Result

from corral.cli import vm_screen
from corral.cli.main import app
from tests.unit.cli._contract import Recording, contract_problems
from tests.unit.cli._real import serve
from tests.unit.cli.canned_api import problem

TOKEN = "tok-console-0123456789"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


def _console_app(received: list[tuple[str, dict[str, Any]]]) -> FastAPI:
    """What docs/api-contract.md promises for the two console routes, with canned answers."""
    api = FastAPI()

    @api.post("/api/v1/vms/{name}/console/type")
    async def type_text(name: str, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return problem(401, "Authentication required")
        received.append((name, await request.json()))
        if name == "off":
            return problem(409, "VM 'off' is shutoff: start it to type on its console")
        return Response(status_code=204)

    @api.post("/api/v1/vms/{name}/console/wait-screen")
    async def wait_screen(name: str, request: Request) -> Response:
        body = await request.json()
        received.append((name, body))
        if name == "slow":
            await asyncio.sleep(1.5)
        if name == "never":
            return problem(
                504,
                f"the image (20x12) did not appear on the screen of VM 'never' within "
                f"{body['timeout_s']:g} s: check that it was cut from this VM's screen",
            )
        return JSONResponse({"x": 3, "y": 4, "elapsed_s": 1.5})

    return api


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]], Recording]]:
    received: list[tuple[str, dict[str, Any]]] = []
    recording = Recording(_console_app(received))
    with serve(recording, lifespan="off") as url:
        yield url, received, recording


@pytest.fixture
def run(
    server: tuple[str, list[tuple[str, dict[str, Any]]], Recording], tmp_path: Path
) -> Iterator[Any]:
    url, received, recording = server
    received.clear()
    recording.exchanges.clear()
    env = {"CORRAL_URL": url, "CORRAL_TOKEN": TOKEN, "CORRAL_CONFIG_DIR": str(tmp_path / "cfg")}
    env["COLUMNS"] = "200"  # errors naming a temporary path must not fold

    def _run(*args: str) -> Result:
        return CliRunner().invoke(app, list(args), env=env)

    _run.received = received  # type: ignore[attr-defined]
    yield _run
    # The canned answers must be ones the real API can give (see _contract.py).
    problems = [p for exchange in recording.exchanges for p in contract_problems(exchange)]
    assert not problems, "\n".join(problems)


def test_type_sends_text_then_keys(run: Any) -> None:
    result = run("vm", "type", "web1", "root", "--keys", "enter")
    assert result.exit_code == 0, result.output
    assert result.stdout == "typed 4 characters and pressed enter on VM web1\n"
    assert run.received == [("web1", {"text": "root", "keys": "enter"})]


def test_type_text_only_and_keys_only(run: Any) -> None:
    assert run("vm", "type", "web1", "echo hi; ls -l").exit_code == 0
    keys_only = run("vm", "type", "web1", "--keys", "ctrl-alt-delete")
    assert keys_only.stdout == "pressed ctrl-alt-delete on VM web1\n"
    assert run.received == [
        ("web1", {"text": "echo hi; ls -l"}),
        ("web1", {"text": "", "keys": "ctrl-alt-delete"}),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["caf\u00e9"], "cannot be typed"),
        ([], "give text to type, keys to press, or both"),
    ],
)
def test_type_refuses_untypeable_input_before_sending(
    run: Any, args: list[str], message: str
) -> None:
    result = run("vm", "type", "web1", *args)
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert run.received == []


def test_type_reports_the_api_error(run: Any) -> None:
    result = run("vm", "type", "off", "x")
    assert result.exit_code == 1
    assert result.stderr == "error: VM 'off' is shutoff: start it to type on its console\n"


def test_wait_screen_sends_the_png_and_prints_where_it_was_found(run: Any, tmp_path: Path) -> None:
    image = tmp_path / "login.png"
    image.write_bytes(PNG)
    result = run("vm", "wait-screen", "web1", "--image", str(image), "--timeout", "7")
    assert result.exit_code == 0, result.output
    assert result.stdout == "found login.png on VM web1 at x=3 y=4 after 1.5 s\n"
    ((name, body),) = run.received
    assert name == "web1" and body["timeout_s"] == 7
    assert base64.b64decode(body["image_png_base64"]) == PNG


def test_wait_screen_json(run: Any, tmp_path: Path) -> None:
    image = tmp_path / "t.png"
    image.write_bytes(PNG)
    result = run("--json", "vm", "wait-screen", "web1", "--image", str(image))
    assert json.loads(result.stdout) == {"x": 3, "y": 4, "elapsed_s": 1.5}
    assert run.received[0][1]["timeout_s"] == 30  # the default


def test_wait_screen_timeout_exits_1_with_the_api_message(run: Any, tmp_path: Path) -> None:
    image = tmp_path / "t.png"
    image.write_bytes(PNG)
    result = run("vm", "wait-screen", "never", "--image", str(image), "--timeout", "2")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert " ".join(result.stderr.split()) == (
        "error: the image (20x12) did not appear on the screen of VM 'never' within 2 s: "
        "check that it was cut from this VM's screen"
    )


def test_wait_screen_missing_file(run: Any, tmp_path: Path) -> None:
    result = run("vm", "wait-screen", "web1", "--image", str(tmp_path / "nope.png"))
    assert result.exit_code == 1
    message = f"cannot read {tmp_path / 'nope.png'}: No such file or directory"
    assert message in " ".join(result.stderr.split())
    assert run.received == []


def test_the_http_timeout_follows_the_wait_timeout(
    run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request stays open while the server waits: its timeout is --timeout plus slack."""
    image = tmp_path / "t.png"
    image.write_bytes(PNG)
    monkeypatch.setattr(vm_screen, "SLACK_S", 0.0)
    cut_short = run("vm", "wait-screen", "slow", "--image", str(image), "--timeout", "0.3")
    assert cut_short.exit_code == 1
    assert "did not answer within 0.3 s" in " ".join(cut_short.stderr.split())
    monkeypatch.setattr(vm_screen, "SLACK_S", 5.0)
    enough = run("vm", "wait-screen", "slow", "--image", str(image), "--timeout", "0.3")
    assert enough.exit_code == 0, enough.output
