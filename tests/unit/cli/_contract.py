"""Every answer the canned API gives is held against the real app's OpenAPI document.

The canned API (``canned_api.py``) is a hand-written copy of Corral's API. So that it cannot
drift from the real one unseen, each HTTP exchange a CLI test causes is recorded
(:class:`Recording`) and checked after the test (:func:`contract_problems`): the operation
must exist in the real API, the status must be one it documents, and a JSON body must be valid
against the schema documented for that status.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import jsonschema_rs
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral.api.app import create_app

#: Answers that break the contract on purpose (the CLI's handling of them is under test).
DELIBERATE = {("GET", "/api/v1/hosts/legacy-shape")}


@dataclass
class Exchange:
    method: str
    path: str
    status: int = 0
    content_type: str = ""
    body: bytearray = field(default_factory=bytearray)


class Recording:
    """ASGI wrapper keeping each HTTP answer of ``app`` (WebSockets pass untouched: the
    serial console is no OpenAPI operation)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.exchanges: list[Exchange] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = Exchange(scope["method"], scope["path"])
        self.exchanges.append(exchange)

        async def keep(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                headers = dict(message.get("headers", []))
                exchange.content_type = headers.get(b"content-type", b"").decode()
            elif message["type"] == "http.response.body":
                exchange.body += message.get("body", b"")
            await send(message)

        await self.app(scope, receive, keep)


@cache
def _document() -> dict[str, Any]:
    return create_app().openapi()


@cache
def _operations() -> list[tuple[str, re.Pattern[str], int, dict[str, Any]]]:
    """(method, path pattern, number of parameters, operation), literal paths first."""
    found = []
    for path, item in _document()["paths"].items():
        pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")
        for method, op in item.items():
            found.append((method.upper(), pattern, path.count("{"), op))
    return sorted(found, key=lambda entry: entry[2])


def _operation(method: str, path: str) -> dict[str, Any] | None:
    for op_method, pattern, _params, op in _operations():
        if op_method == method and pattern.match(path):
            return op
    return None


@cache
def _validator(schema: str) -> jsonschema_rs.Draft202012Validator:
    # The document's components go along: its schemas refer to them as #/components/….
    return jsonschema_rs.Draft202012Validator(
        {**json.loads(schema), "components": _document()["components"]}
    )


def contract_problems(exchange: Exchange) -> list[str]:
    """What in this canned answer the real API's document does not allow (empty: nothing)."""
    what = f"{exchange.method} {exchange.path} → {exchange.status}"
    if (exchange.method, exchange.path) in DELIBERATE or exchange.status == 0:
        return []  # a breach on purpose, or no answer yet (the client gave up waiting)
    op = _operation(exchange.method, exchange.path)
    if op is None:
        return [f"{what}: the real API has no such operation"]
    documented = op["responses"].get(str(exchange.status))
    if documented is None:
        return [f"{what}: the real API documents only {sorted(op['responses'])}"]
    media = exchange.content_type.split(";")[0].strip()
    content = documented.get("content", {})
    if not content:
        return [] if not exchange.body else [f"{what}: the real API answers no body"]
    if media not in content:
        return [f"{what}: answers {media or 'no type'}, the real API {sorted(content)}"]
    schema = content[media].get("schema")
    if schema is None or not media.endswith("json"):
        return []
    validator = _validator(json.dumps(schema, sort_keys=True))
    instance = json.loads(bytes(exchange.body))
    return [f"{what}: {error.message} at {list(error.instance_path)}"
            for error in validator.iter_errors(instance)]  # fmt: skip
