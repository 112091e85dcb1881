"""libvirt domain event callbacks → :class:`DomainEvent` (run in the asyncio loop thread)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import libvirt

from corral.virt.types import EVENT_LIFECYCLE, EVENT_REBOOT, DomainEvent

# Index = libvirt's event number (virDomainEventType).
_EVENTS = (
    "defined", "undefined", "started", "suspended", "resumed", "stopped", "shutdown",
    "pmsuspended", "crashed",
)  # fmt: skip
# Per event, index = detail number (virDomainEvent*DetailType).
_REASONS: dict[str, tuple[str, ...]] = {
    "defined": ("added", "updated", "renamed", "from_snapshot"),
    "undefined": ("removed", "renamed"),
    "started": ("booted", "migrated", "restored", "from_snapshot", "wakeup"),
    "suspended": (
        "paused",
        "migrated",
        "ioerror",
        "watchdog",
        "restored",
        "from_snapshot",
        "api_error",
        "postcopy",
        "postcopy_failed",
    ),
    "resumed": ("unpaused", "migrated", "from_snapshot", "postcopy", "postcopy_failed"),
    "stopped": (
        "shutdown",
        "destroyed",
        "crashed",
        "migrated",
        "saved",
        "failed",
        "from_snapshot",
    ),
    "shutdown": ("finished", "guest", "host"),
    "pmsuspended": ("memory", "disk"),
    "crashed": ("panicked", "crashloaded"),
}


def lifecycle_event(host: str, dom: libvirt.virDomain, event: int, detail: int) -> DomainEvent:
    name = _EVENTS[event] if 0 <= event < len(_EVENTS) else f"event-{event}"
    reasons = _REASONS.get(name, ())
    reason = reasons[detail] if 0 <= detail < len(reasons) else str(detail)
    return DomainEvent(host, dom.UUIDString(), dom.name(), EVENT_LIFECYCLE, name, reason)


class DomainEventRegistration:
    """The domain event callbacks of one connection (registered again after a reconnect)."""

    def __init__(self, host: str, emit: Callable[[DomainEvent], None]) -> None:
        self._host = host
        self._emit = emit

    def register(self, conn: libvirt.virConnect) -> list[int]:
        """Register on ``conn`` (blocking RPCs: call from a worker thread); returns the ids."""
        return [
            conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, None
            ),
            conn.domainEventRegisterAny(
                None, libvirt.VIR_DOMAIN_EVENT_ID_REBOOT, self._on_reboot, None
            ),
        ]

    @staticmethod
    def deregister(conn: libvirt.virConnect, ids: list[int]) -> None:
        for callback_id in ids:
            # When the connection is already gone there is nothing left to deregister.
            with contextlib.suppress(libvirt.libvirtError):
                conn.domainEventDeregisterAny(callback_id)

    def _on_lifecycle(
        self, _conn: libvirt.virConnect, dom: libvirt.virDomain, event: int, detail: int, _o: object
    ) -> None:
        self._emit(lifecycle_event(self._host, dom, event, detail))

    def _on_reboot(self, _conn: libvirt.virConnect, dom: libvirt.virDomain, _o: object) -> None:
        self._emit(DomainEvent(self._host, dom.UUIDString(), dom.name(), EVENT_REBOOT, "reboot"))
