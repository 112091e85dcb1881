"""The agent's network state on the host, under ``/run/corral-agent`` — volatile like the links
themselves (a reboot loses both: nothing stale survives it). On the manager's own host it lives
under Corral's data directory instead; after a reboot there the next apply makes the missing
links again and moves addresses only where they still are.

* ``state.json``    the managed bridges: each one's spec as applied, the addresses and routes
                    moved onto it from its uplink (to move back on removal), and the MTU its
                    port had before
* ``pending.json``  the change waiting for ``net.confirm``: its id, deadline and the state
                    before it (what the rollback restores)
* ``history.json``  the last outcomes (confirmed, rolled-back, failed), newest last
* ``lock``          one agent at a time changes links (``flock``)
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: The manager's own host sets another (``CORRAL_AGENT_STATE_DIR``, under its data directory):
#: two Corrals on one machine — a test run beside a real one — must not share one record.
STATE_DIR = Path(os.environ.get("CORRAL_AGENT_STATE_DIR") or "/run/corral-agent")
FORMAT = 1
_HISTORY = 20


def _read(name: str) -> Any:
    try:
        return json.loads((STATE_DIR / name).read_text())
    except FileNotFoundError:
        return None


def _write(name: str, data: Any) -> None:
    """Atomically (a reader or a crash sees the old file or the new one, never half)."""
    STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = STATE_DIR / f".{name}.tmp"
    with temporary.open("w") as handle:
        json.dump(data, handle, sort_keys=True, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(STATE_DIR / name)


@contextmanager
def locked() -> Iterator[None]:
    STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    with (STATE_DIR / "lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_state() -> dict[str, Any]:
    """``{"format": 1, "bridges": {NAME: {"spec": …, "moved": […], "port_mtu": {…}}}}``."""
    state = _read("state.json")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        return {"format": FORMAT, "bridges": {}}
    return state


def save_state(state: dict[str, Any]) -> None:
    _write("state.json", state)


def load_pending() -> dict[str, Any] | None:
    pending = _read("pending.json")
    return pending if isinstance(pending, dict) else None


def save_pending(pending: dict[str, Any]) -> None:
    _write("pending.json", pending)


def clear_pending() -> None:
    (STATE_DIR / "pending.json").unlink(missing_ok=True)


def history() -> list[dict[str, Any]]:
    items = _read("history.json")
    return items if isinstance(items, list) else []


def record_outcome(
    change_id: str, outcome: str, reason: str = "", since: float | None = None
) -> None:
    """``since``: when the change was applied (wall clock), to say how long it stood."""
    now = time.time()
    entry: dict[str, Any] = {"change_id": change_id, "outcome": outcome, "reason": reason}
    entry["at"] = now
    entry["after_s"] = None if since is None else round(now - since, 2)
    _write("history.json", [*history(), entry][-_HISTORY:])


def outcome_of(change_id: str) -> dict[str, Any] | None:
    return next((h for h in reversed(history()) if h.get("change_id") == change_id), None)
