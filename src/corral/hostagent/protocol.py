"""The agent's wire protocol: its version, a request, a reply, and the one error it raises."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from typing import Any

#: The file the manager adds to the shipped zip: the version it computed from the sources.
VERSION_FILE = "VERSION"
#: Protocol generation: bumped only if the request/reply envelope itself changes.
PROTOCOL = 1


class AgentError(Exception):
    """A failure the agent reports as ``{"ok": false, "error": message}``: a sentence in the
    agent's own words (never a command's raw output alone)."""


def source_digest(files: dict[str, bytes]) -> str:
    """The agent's version: 16 hex digits of SHA-256 over its source files (relative name and
    content, in name order). The manager and the agent compute it the same way."""
    digest = hashlib.sha256(f"corral-hostagent/{PROTOCOL}\n".encode())
    for name in sorted(files):
        digest.update(f"{name}\n{len(files[name])}\n".encode())
        digest.update(files[name])
    return digest.hexdigest()[:16]


def package_sources() -> dict[str, bytes]:
    """This package's ``.py`` files by name (read through importlib: a directory or a zip)."""
    root = resources.files(__package__)
    return {
        item.name: item.read_bytes()
        for item in root.iterdir()
        if item.name.endswith(".py") and item.is_file()
    }


def agent_version() -> str:
    """The shipped zip's recorded version, or (run from a source tree) the digest now."""
    recorded = resources.files(__package__).joinpath(VERSION_FILE)
    if recorded.is_file():
        return recorded.read_text().strip()
    return source_digest(package_sources())


def parse_request(raw: bytes) -> tuple[str, dict[str, Any]]:
    try:
        request = json.loads(raw.decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise AgentError(f"the request is not JSON: {exc}") from exc
    if not isinstance(request, dict) or not isinstance(request.get("op"), str):
        raise AgentError('the request must be {"op": NAME, "args": {...}}')
    args = request.get("args", {})
    if not isinstance(args, dict):
        raise AgentError("args must be a JSON object")
    return request["op"], args


def reply(version: str, result: dict[str, Any] | None, error: str | None = None) -> bytes:
    body: dict[str, Any] = {"agent": version, "protocol": PROTOCOL, "ok": error is None}
    if error is None:
        body["result"] = result or {}
    else:
        body["error"] = error
    return (json.dumps(body, sort_keys=True) + "\n").encode()
