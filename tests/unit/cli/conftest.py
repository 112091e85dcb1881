"""Fixtures for the CLI tests: the canned contract API on a real port, and a way to run the CLI.

Every answer the canned API gives during a test is checked against the real app's OpenAPI
document afterwards (``_contract.py``): a canned answer the real API could not give fails the
test that received it."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from corral.cli.main import app
from tests.unit.cli._contract import Exchange, Recording, contract_problems
from tests.unit.cli._real import ADMIN, PASSWORD, RecordRequests, Request, real_corral, serve
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
    with serve(app_, lifespan="off") as url:
        yield url, state, app_


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


@dataclass
class RealApi:
    """The real app (see ``_real.py``), as one test sees it."""

    url: str
    #: The module's admin token, and its id.
    token: str
    token_id: str
    config_dir: Path
    _recorder: RecordRequests
    _first: int

    def env(self, *, token: bool = True) -> dict[str, str]:
        env = {"CORRAL_URL": self.url, "CORRAL_CONFIG_DIR": str(self.config_dir)}
        if token:
            env["CORRAL_TOKEN"] = self.token
        return env

    @property
    def requests(self) -> list[Request]:
        """What this test sent so far."""
        return self._recorder.requests[self._first :]

    def requests_to(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if r[0] == method and r[1] == "/api/v1" + path]

    def client(self, token: str | None = None) -> httpx.Client:
        """An API client (admin by default) to arrange and check what the CLI cannot."""
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.Client(base_url=self.url + "/api/v1", headers=headers, timeout=30)

    def login(self, user: str, password: str) -> dict[str, str]:
        """A new token of ``user`` (the login answer: id, secret, …)."""
        answer = httpx.post(self.url + "/api/v1/auth/login", timeout=30,
                            json={"username": user, "password": password})  # fmt: skip
        assert answer.status_code == 201, answer.text
        return dict(answer.json())


# One app per module, like tests/unit/api: the test driver's state is shared per process, and
# an app that outlived its module would watch (and reconcile) the next modules' domains.
@pytest.fixture(scope="module")
def _real_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, RecordRequests, dict[str, str]]]:
    with real_corral(tmp_path_factory.mktemp("corral")) as (url, _services, recorder):
        answer = httpx.post(url + "/api/v1/auth/login", timeout=30,
                            json={"username": ADMIN, "password": PASSWORD})  # fmt: skip
        assert answer.status_code == 201, answer.text
        yield url, recorder, answer.json()


@pytest.fixture
def real_api(
    _real_server: tuple[str, RecordRequests, dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> RealApi:
    url, recorder, token = _real_server
    for name in list(os.environ):
        if name.startswith("CORRAL_") or name == "XDG_CONFIG_HOME":
            monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "200")
    return RealApi(url, token["secret"], token["id"], tmp_path / "config", recorder,
                   len(recorder.requests))  # fmt: skip


@pytest.fixture
def run_real(real_api: RealApi) -> Run:
    """``run(*args, input=None, token=True)``: the CLI in-process against the real app."""
    runner = CliRunner()

    def _run(*args: str, input: str | None = None, token: bool = True) -> Result:
        return runner.invoke(app, list(args), input=input, env=real_api.env(token=token))

    return _run


class Vms:
    """VMs of the real app made for one test, deleted after it (the test driver's domains
    outlive the app)."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.names: list[str] = []

    def make(self, name: str, **spec: Any) -> str:
        answer = self.client.post("/vms", json={"name": name, "disks": [{"size_gib": 1}], **spec})
        assert answer.status_code == 201, answer.text
        self.names.append(name)
        return name

    def get(self, name: str) -> dict[str, Any]:
        answer = self.client.get(f"/vms/{name}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())


@pytest.fixture
def vms(real_api: RealApi) -> Iterator[Vms]:
    with real_api.client() as client:
        made = Vms(client)
        yield made
        for name in made.names:
            _delete(client, name)


def _delete(client: httpx.Client, name: str) -> None:
    """Stop and delete until the VM is gone (bounded), and say so if it is not: a VM left
    behind turned up in a later test's "did you mean" (once, under the suite's load)."""
    deadline = time.monotonic() + 30
    while True:
        client.post(f"/vms/{name}/stop")
        answer = client.delete(f"/vms/{name}", params={"delete_disks": True})
        if answer.status_code in (204, 404):
            return
        assert time.monotonic() < deadline, f"VM {name} not deleted: {answer.text}"
        time.sleep(0.2)  # the poll's interval


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
