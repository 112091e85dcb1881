"""pydantic's validation errors in words a person can act on, keyed by the field they name.

Shared by the API's 422 answers (``api/problems.py``) and the web UI's form messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from corral.model.rules import pattern_rule


def _loc(loc: tuple[Any, ...]) -> str:
    # Only the leading part says where the value came from: a field may itself be named
    # ``path`` (a shared-dir storage domain's), and must keep its name.
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def _message(err: dict[str, Any]) -> str:
    kind = err.get("type")
    if kind == "json_invalid":
        return "the request body is not valid JSON: " + str(err.get("ctx", {}).get("error", ""))
    if (rule := pattern_rule(err)) is not None:
        return rule
    if kind == "model_attributes_type" and tuple(err.get("loc", ())) == ("body",):
        return "the request body must be a JSON object sent with Content-Type: application/json"
    if kind == "extra_forbidden":
        return "unknown field: remove it (see /openapi.json for the accepted fields)"
    return str(err.get("msg", "invalid")).removeprefix("Value error, ")


def validation_items(errors: Sequence[Any]) -> list[dict[str, str]]:
    """pydantic's errors as ``{"loc": "disks.0.size_gib", "msg": "…"}`` a person can act on."""
    return [{"loc": _loc(tuple(err.get("loc", ()))), "msg": _message(err)} for err in errors]
