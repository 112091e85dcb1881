"""The check that keeps the canned API honest: answers the real API could not give are found."""

from __future__ import annotations

import json
from typing import Any

from corral.model.vm import VmState
from tests.unit.cli._contract import Exchange, contract_problems
from tests.unit.cli.canned_api import vm_info
from tests.unit.cli.conftest import CannedApi, Run

PROBLEM = {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "no VM named x"}


def _exchange(method: str, path: str, status: int, media: str, body: Any) -> Exchange:
    exchange = Exchange(method, path, status, media)
    exchange.body += json.dumps(body).encode()
    return exchange


def test_a_canned_answer_the_real_api_allows_passes() -> None:
    vm = vm_info("web1").model_dump(mode="json")
    assert (
        contract_problems(_exchange("GET", "/api/v1/vms/web1", 200, "application/json", vm)) == []
    )
    problem = _exchange("GET", "/api/v1/vms/x", 404, "application/problem+json", PROBLEM)
    assert contract_problems(problem) == []


def test_answers_the_real_api_cannot_give_are_found() -> None:
    partial = _exchange("GET", "/api/v1/vms/web1", 200, "application/json", {"name": "web1"})
    assert any('"uuid" is a required property' in p for p in contract_problems(partial))
    unknown = _exchange("POST", "/api/v1/vms/web1/frobnicate", 200, "application/json", {})
    assert contract_problems(unknown) == [
        "POST /api/v1/vms/web1/frobnicate → 200: the real API has no such operation"
    ]
    undocumented = _exchange("POST", "/api/v1/vms/web1/start", 202, "application/json", {})
    assert "documents only" in contract_problems(undocumented)[0]
    plain_json_error = _exchange("GET", "/api/v1/vms/x", 404, "application/json", PROBLEM)
    assert "application/problem+json" in contract_problems(plain_json_error)[0]


def test_every_exchange_of_a_cli_test_is_recorded_for_the_check(run: Run, api: CannedApi) -> None:
    api.state.vms = {"web1": vm_info("web1", VmState.SHUTOFF)}
    assert run("vm", "start", "web1").exit_code == 0
    assert run("vm", "show", "nope").exit_code == 1
    seen = [(e.method, e.path, e.status) for e in api.exchanges]
    assert seen == [("POST", "/api/v1/vms/web1/start", 200), ("GET", "/api/v1/vms/nope", 404)]
    assert all(contract_problems(e) == [] for e in api.exchanges)
