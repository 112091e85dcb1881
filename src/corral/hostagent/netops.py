"""``net.state``, ``net.apply`` and ``net.confirm``, and the rollback timer.

Two phases: ``net.apply`` records the change as pending with the state before it, starts a
detached timer (its own session: it outlives the SSH connection that asked), then changes the
links. Unless ``net.confirm`` names the change within ``rollback_after_s``, the timer restores
the state before it — so a change that cuts the host off from Corral undoes itself. A change
that fails part-way is undone at once and reported.
"""

from __future__ import annotations

import copy
import signal
import subprocess
import sys
import time
from typing import Any

from . import iproute, netstore
from .netapply import Realiser, observe, preflight, vlan_supported
from .netspec import CHANGE_ID, ApplyRequest, apply_request, from_json
from .protocol import AgentError


def state(_args: dict[str, Any]) -> dict[str, Any]:
    """The managed bridges (as recorded, with drift), the pending change and recent outcomes."""
    with netstore.locked():
        current = netstore.load_state()
        pending = netstore.load_pending()
        history = netstore.history()
    return {
        "bridges": _observed(current),
        "pending": _pending_view(pending),
        "history": history[-10:],
        "vlan_supported": vlan_supported(),
    }


def apply(args: dict[str, Any]) -> dict[str, Any]:
    request = apply_request(args)
    with netstore.locked():
        pending = netstore.load_pending()
        if pending is not None:
            if pending["change_id"] == request.change_id:  # a retry of the same request
                return _applied(netstore.load_state(), pending)
            raise AgentError(
                f"change {pending['change_id']} is waiting for confirmation (rolled back in "
                f"{_remaining(pending):.0f} s unless confirmed): confirm it or wait"
            )
        current = netstore.load_state()
        preflight(current, request.bridges)
        pending = _start(request, current)
        realiser = Realiser(current, strict=True)
        try:
            realiser.reconcile(request.bridges)
        except AgentError as exc:
            errors = restore(current, pending["previous"])
            netstore.clear_pending()
            netstore.record_outcome(request.change_id, "failed", str(exc))
            undone = (
                "the previous state was restored"
                if not errors
                else f"restoring the previous state also failed: {'; '.join(errors)}"
            )
            raise AgentError(f"{exc}; {undone}") from exc
        return _applied(current, pending)


def confirm(args: dict[str, Any]) -> dict[str, Any]:
    change_id = args.get("change_id")
    if not isinstance(change_id, str) or not CHANGE_ID.fullmatch(change_id):
        raise AgentError("change_id must name the change to confirm")
    with netstore.locked():
        pending = netstore.load_pending()
        if pending is not None and pending["change_id"] == change_id:
            netstore.clear_pending()
            netstore.record_outcome(change_id, "confirmed", since=pending.get("since"))
            return {"change_id": change_id, "confirmed": True}
        past = netstore.outcome_of(change_id)
    if past is not None and past["outcome"] == "confirmed":
        return {"change_id": change_id, "confirmed": True}
    if past is not None:
        raise AgentError(
            f"change {change_id} was {past['outcome']} ({past['reason']}): there is nothing to "
            "confirm; apply it again"
        )
    raise AgentError(f"no change {change_id} is waiting for confirmation on this host")


def restore(current: dict[str, Any], previous: dict[str, Any]) -> list[str]:
    """Bring ``current`` back to ``previous``'s bridges, as far as possible; what failed."""
    specs = tuple(from_json(rec["spec"]) for rec in previous["bridges"].values())
    realiser = Realiser(current, strict=False)
    realiser.reconcile(specs)
    return realiser.errors


def rollback_timer(change_id: str) -> int:
    """The detached timer: wait for the deadline, then restore unless the change was
    confirmed (or replaced) meanwhile."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    pending = netstore.load_pending()
    if pending is None or pending["change_id"] != change_id:
        return 0
    time.sleep(max(0.0, _remaining(pending)))
    with netstore.locked():
        pending = netstore.load_pending()
        if pending is None or pending["change_id"] != change_id:
            return 0
        errors = restore(netstore.load_state(), pending["previous"])
        netstore.clear_pending()
        reason = f"no confirmation within {pending['rollback_after_s']} s"
        if errors:
            reason += f"; restoring hit: {'; '.join(errors)}"
        netstore.record_outcome(change_id, "rolled-back", reason, pending.get("since"))
    return 0


# -- helpers ---------------------------------------------------------------------------------
def _start(request: ApplyRequest, current: dict[str, Any]) -> dict[str, Any]:
    """Record the change as pending (with the state to go back to), then start its timer —
    both before any link changes."""
    pending = {
        "change_id": request.change_id,
        "rollback_after_s": request.rollback_after_s,
        "deadline": time.monotonic() + request.rollback_after_s,
        "since": time.time(),
        "previous": copy.deepcopy(current),
    }
    netstore.save_pending(pending)
    subprocess.Popen(
        [*_self_command(), "--rollback", request.change_id],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
    return pending


def _self_command() -> list[str]:
    """How to run this agent again: the shipped zip, or the package (manager's own host)."""
    if __package__ == "corral.hostagent":
        return [sys.executable, "-I", "-m", "corral.hostagent"]
    return [sys.executable, "-I", sys.argv[0]]


def _remaining(pending: dict[str, Any]) -> float:
    return max(0.0, float(pending["deadline"]) - time.monotonic())


def _pending_view(pending: dict[str, Any] | None) -> dict[str, Any] | None:
    if pending is None:
        return None
    return {"change_id": pending["change_id"], "rollback_in_s": round(_remaining(pending), 1)}


def _observed(current: dict[str, Any]) -> list[dict[str, Any]]:
    links = iproute.links()
    return [observe(name, rec, links) for name, rec in sorted(current["bridges"].items())]


def _applied(current: dict[str, Any], pending: dict[str, Any]) -> dict[str, Any]:
    return {
        "change_id": pending["change_id"],
        "pending": True,
        "rollback_in_s": round(_remaining(pending), 1),
        "bridges": _observed(current),
    }
