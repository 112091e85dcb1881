"""Fixtures for the CLI tests: the canned contract API on a real port, and a way to run the CLI.

Every answer the canned API gives during a test is checked against the real app's OpenAPI
document afterwards (``_contract.py``): a canned answer the real API could not give fails the
test that received it."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from typer.testing import CliRunner, Result

from corral.cli.main import app
from tests.unit.cli._contract import Exchange, Recording, contract_problems
from tests.unit.cli.canned_api import CannedState, build_app


@dataclass
class CannedApi:
    url: str
    state: CannedState
    config_dir: Path
    #: The HTTP exchanges of the current test (checked against the real API after it).
    exchanges: list[Exchange]

    def env(self, *, token: bool = True) -> dict[str, str]:
        env = {"CORRAL_URL": self.url, "CORRAL_CONFIG_DIR": str(self.config_dir)}
        if token:
            env["CORRAL_TOKEN"] = self.state.token
        return env

    def requests_to(self, method: str, path: str) -> list[tuple[str, str, object, dict[str, str]]]:
        return [r for r in self.state.requests if r[0] == method and r[1] == "/api/v1" + path]


@pytest.fixture(scope="session")
def _server() -> Iterator[tuple[str, CannedState, Recording]]:
    state = CannedState()
    app_ = Recording(build_app(state))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app_, log_level="warning", ws="websockets-sansio", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the canned API did not start")
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}", state, app_
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def api(
    _server: tuple[str, CannedState, Recording], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[CannedApi]:
    url, state, recording = _server
    state.reset()
    recording.exchanges.clear()
    for name in list(os.environ):
        if name.startswith("CORRAL_") or name == "XDG_CONFIG_HOME":
            monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "200")
    yield CannedApi(url, state, tmp_path / "config", recording.exchanges)
    problems = [p for exchange in recording.exchanges for p in contract_problems(exchange)]
    assert not problems, "the canned API answered what the real one cannot:\n" + "\n".join(problems)


#: ``run(*args, input=None, token=True)``: the CLI in-process against the canned API.
Run = Callable[..., Result]


@pytest.fixture
def run(api: CannedApi) -> Iterator[Run]:
    """``run(*args, input=None, token=True)`` → typer ``Result`` (stdout and stderr apart)."""
    runner = CliRunner()

    def _run(*args: str, input: str | None = None, token: bool = True) -> Result:
        return runner.invoke(app, list(args), input=input, env=api.env(token=token))

    yield _run


def cli_command(*args: str) -> Sequence[str]:
    """The CLI as a real process: ``python -m corral.cli.main ARGS``."""
    return [sys.executable, "-m", "corral.cli.main", *args]
