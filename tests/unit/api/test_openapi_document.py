"""The OpenAPI document, read structurally: every operation lists its error answers, and every
error answer is the shared Problem schema as application/problem+json."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from corral.api.app import create_app
from corral.api.deps import Operator, Viewer
from corral.api.openapi import derived_statuses, document_errors
from corral.api.params import NamePath
from corral.model.console import KEYS_PATTERN, TypeRequest
from corral.model.problem import Problem
from corral.model.vm import VmSpec
from corral.rfb import RFBClient
from tests.unit.api.conftest import Api

PUBLIC = {"/api/v1/auth/login", "/healthz"}
PROBLEM_REF = "#/components/schemas/Problem"
METHODS = {"get", "put", "post", "delete", "patch", "options", "head"}

_DOC = create_app().openapi()
_OPERATIONS = [
    (method.upper(), path, op)
    for path, item in _DOC["paths"].items()
    for method, op in item.items()
    if method in METHODS
]
_IDS = [f"{m} {p}" for m, p, _ in _OPERATIONS]


def _keys(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _keys(value)
    elif isinstance(node, list):
        for item in node:
            yield from _keys(item)


def test_bounds_are_written_as_json_schema_words() -> None:
    # pydantic writes the bounds of an Annotated type nested in another as ``ge``/``le``: no
    # client reads those, so a contract fuzzer sent hosts_in_reserve 37419 and got a 422.
    assert not {"ge", "gt", "le", "lt"} & set(_keys(_DOC["components"]["schemas"]))
    update = _DOC["components"]["schemas"]["ClusterSettingsUpdate"]["properties"]
    reserve = update["hosts_in_reserve"]["anyOf"][0]
    assert (reserve["minimum"], reserve["maximum"]) == (0, 10_000)


def test_the_document_lists_the_api() -> None:
    assert len(_OPERATIONS) >= 35
    assert "/openapi.json" not in _DOC["paths"] and "/docs" not in _DOC["paths"]
    # The serial console is a WebSocket: no HTTP operation may claim to be it.
    assert not any(p.endswith("/serial") for _, p, _ in _OPERATIONS)


@pytest.mark.parametrize(("method", "path", "op"), _OPERATIONS, ids=_IDS)
def test_protected_operations_document_401(method: str, path: str, op: dict[str, Any]) -> None:
    if path in PUBLIC:
        assert "security" not in op
        return
    assert op["security"] == [{"HTTPBearer": []}]
    assert "401" in op["responses"]
    assert "WWW-Authenticate" in op["responses"]["401"]["headers"]


@pytest.mark.parametrize(("method", "path", "op"), _OPERATIONS, ids=_IDS)
def test_operations_with_input_document_422(method: str, path: str, op: dict[str, Any]) -> None:
    has_input = bool(op.get("parameters")) or "requestBody" in op
    assert ("422" in op["responses"]) == has_input


@pytest.mark.parametrize(("method", "path", "op"), _OPERATIONS, ids=_IDS)
def test_path_parameters_document_404(method: str, path: str, op: dict[str, Any]) -> None:
    if any(p["in"] == "path" for p in op.get("parameters", [])):
        assert "404" in op["responses"]


@pytest.mark.parametrize(("method", "path", "op"), _OPERATIONS, ids=_IDS)
def test_every_error_is_a_problem(method: str, path: str, op: dict[str, Any]) -> None:
    errors = {s: r for s, r in op["responses"].items() if int(s) >= 400}
    for status, response in errors.items():
        assert response["content"] == {
            "application/problem+json": {"schema": {"$ref": PROBLEM_REF}}
        }, status
        assert response["description"], status
    # A 5xx other than a host's failure would be a bug, never a promise.
    assert not {s for s in errors if int(s) >= 500} - {"502", "503", "504"}


@pytest.mark.parametrize(("method", "path", "op"), _OPERATIONS, ids=_IDS)
def test_accepted_work_says_where_the_task_is(method: str, path: str, op: dict[str, Any]) -> None:
    if "202" in op["responses"]:
        accepted = op["responses"]["202"]
        assert accepted["headers"]["Location"]["required"] is True
        assert accepted["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/TaskInfo"
        }


def test_one_shared_problem_schema() -> None:
    schemas = _DOC["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    problem = schemas["Problem"]
    assert set(problem["required"]) == {"title", "status", "detail"}
    assert set(problem["properties"]) == {"type", "title", "status", "detail", "errors"}
    assert problem["properties"]["errors"]["items"] == {"$ref": "#/components/schemas/FieldError"}
    assert set(schemas["FieldError"]["required"]) == {"loc", "msg"}


def test_real_answers_match_the_problem_schema(api: Api) -> None:
    invalid = api.client.post("/api/v1/vms", json={"name": "a b"}, headers=api.headers())
    unauthenticated = api.client.get("/api/v1/vms")
    missing = api.client.get("/api/v1/vms/nope", headers=api.headers())
    for answer, status in ((invalid, 422), (unauthenticated, 401), (missing, 404)):
        assert answer.status_code == status
        assert answer.headers["content-type"] == "application/problem+json"
        assert Problem.model_validate(answer.json()).status == status
    assert Problem.model_validate(invalid.json()).errors[0].loc == "name"


def test_405_lists_every_method_of_the_path(api: Api) -> None:
    answer = api.client.request("PUT", "/api/v1/vms", headers=api.headers())
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, POST"
    assert answer.headers["content-type"] == "application/problem+json"


def test_a_body_that_is_not_utf8_is_refused_like_bad_json(api: Api) -> None:
    headers = {**api.headers(), "Content-Type": "application/json"}
    answer = api.client.post("/api/v1/vms", content=b'{"name": "\xff"}', headers=headers)
    assert answer.status_code == 422
    assert "not valid JSON" in answer.json()["detail"]


class _Body(BaseModel):
    value: int


def test_new_routes_get_their_error_answers_derived() -> None:
    router = APIRouter()

    @router.post("/things/{name}")
    async def act(name: NamePath, body: _Body, _: Operator) -> None:
        return None

    @router.get("/things")
    async def read(_: Viewer) -> None:
        return None

    app = FastAPI()
    app.include_router(document_errors(router))
    routes = {r.path: r for r in router.routes if isinstance(r, APIRoute)}
    assert derived_statuses(routes["/things/{name}"]) == {401, 403, 404, 422}
    assert derived_statuses(routes["/things"]) == {401}
    responses = app.openapi()["paths"]["/things/{name}"]["post"]["responses"]
    assert {"401", "403", "404", "422"} <= set(responses)


# The document states request rules as regexes and JSON Schema conditions; a JSON Schema
# validator reading the models' schemas must accept exactly what pydantic accepts.


def _agree(model: type[BaseModel], instance: dict[str, Any]) -> None:
    documented = jsonschema_rs.Draft202012Validator(model.model_json_schema()).is_valid(instance)
    try:
        model.model_validate(instance)
    except ValidationError:
        accepted = False
    else:
        accepted = True
    assert accepted == documented, instance


_TEXT = st.text(alphabet=st.characters(max_codepoint=0x7F) | st.sampled_from("é\u00a0\u2028"))


@settings(max_examples=400, deadline=None)
@given(
    text=st.none() | _TEXT,
    keys=st.none() | _TEXT | st.from_regex(KEYS_PATTERN, fullmatch=True),
)
def test_typing_rules_agree(text: str | None, keys: str | None) -> None:
    body = {k: v for k, v in (("text", text), ("keys", keys)) if v is not None}
    _agree(TypeRequest, body)


@settings(max_examples=300, deadline=None)
@given(st.from_regex(KEYS_PATTERN, fullmatch=True).filter(lambda keys: len(keys) <= 256))
def test_every_documented_key_combination_can_be_pressed(keys: str) -> None:
    request = TypeRequest(text="x", keys=keys)
    RFBClient.key_events(request.text, request.combos())


_SOURCES = {"size_gib": 1, "base_image": "b", "import_path": "/i"}
_PATH = st.none() | st.sampled_from(["/x", "x", "", "/a\x00b", "/\t"])


@settings(max_examples=500, deadline=None)
@given(
    source=st.sampled_from(["disk", "cdrom", "kernel", None]),
    kernel=_PATH,
    cdrom=_PATH,
    names=st.lists(st.sampled_from(["root", "d1", "a..b", ".x", "x."]), max_size=2),
    sources=st.lists(
        st.sets(st.sampled_from(["size_gib", "base_image", "import_path"])), max_size=2
    ),
)
def test_vm_spec_rules_agree(
    source: str | None,
    kernel: str | None,
    cdrom: str | None,
    names: list[str],
    sources: list[set[str]],
) -> None:
    disks = [
        {"name": name, **{k: _SOURCES[k] for k in chosen}}
        for name, chosen in zip(names, sources, strict=False)
        if len(set(names)) == len(names)  # unique names: the one rule JSON Schema cannot state
    ]
    boot: dict[str, Any] = {} if source is None else {"source": source}
    if kernel is not None:
        boot["kernel"] = kernel
    spec: dict[str, Any] = {"name": "v", "boot": boot, "disks": disks}
    if cdrom is not None:
        spec["cdrom"] = cdrom
    _agree(VmSpec, spec)


def test_duplicate_disk_names_are_refused_though_the_document_cannot_say_so() -> None:
    disk = {"name": "d", "size_gib": 1}
    with pytest.raises(ValidationError, match="disk names must be unique"):
        VmSpec.model_validate({"name": "v", "disks": [disk, disk]})


def test_the_cross_field_rules_are_in_the_document() -> None:
    schemas = _DOC["components"]["schemas"]
    assert "oneOf" in schemas["DiskSpec"]
    assert "if" in schemas["BootSpec"] and "then" in schemas["BootSpec"]
    assert len(schemas["VmSpec"]["allOf"]) == 2
    assert "anyOf" in schemas["TypeRequest"]
