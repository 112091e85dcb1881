"""The interface every host power driver offers, and what the drivers share."""

from __future__ import annotations

from typing import Protocol

from corral.model.power import PowerDriverKind, PowerState


class PowerDriver(Protocol):
    """Switches one host on or off. ``status`` is the driver's own view (a BMC knows; a
    magic packet does not: UNKNOWN), which Corral checks against libvirt's connection.

    Both switches return once the request was accepted; Corral then waits for libvirt to
    answer (on) or stop answering (off). Failures raise ``PowerDriverFailed`` or
    ``OperationTimeout`` with a sentence that names the host and the cause; secrets never
    appear in them.
    """

    @property
    def kind(self) -> PowerDriverKind: ...

    @property
    def can_power_on(self) -> bool: ...

    @property
    def can_power_off(self) -> bool: ...

    async def power_on(self) -> None: ...

    async def power_off(self) -> None: ...

    async def status(self) -> PowerState: ...
