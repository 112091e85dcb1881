"""Which driver serves which kind: each kind registers a factory once, at import of
``corral.services.storage.drivers`` (a kind's module calls :func:`register`)."""

from __future__ import annotations

from collections.abc import Callable

from corral.errors import Conflict
from corral.model.storage_domain import StorageDomainKind
from corral.services.storage.driver import DomainConfig, DriverContext, StorageDriver

#: Builds the driver of one domain.
DriverFactory = Callable[[DomainConfig, DriverContext], StorageDriver]

_FACTORIES: dict[StorageDomainKind, DriverFactory] = {}


def register(kind: StorageDomainKind, factory: DriverFactory) -> None:
    """Make ``kind`` available (a second registration replaces the first: tests may)."""
    _FACTORIES[kind] = factory


def available_kinds() -> list[StorageDomainKind]:
    return [k for k in StorageDomainKind if k in _FACTORIES]


def driver_for(config: DomainConfig, context: DriverContext) -> StorageDriver:
    """The driver of ``config``'s domain; Conflict (409: the request is well formed, this
    installation cannot serve it) when its kind has no driver yet."""
    factory = _FACTORIES.get(config.kind)
    if factory is None:
        kinds = ", ".join(k.value for k in available_kinds())
        raise Conflict(
            f"storage domain kind {config.kind.value!r} is not available yet in this Corral "
            f"(available: {kinds})"
        )
    return factory(config, context)
