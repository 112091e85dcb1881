"""Storage domains: cluster-wide places for volumes, each kind served by a driver.

- ``driver.py``: ``StorageDriver`` (the Protocol a kind implements), ``DomainConfig``,
  ``DriverContext``, ``ReachResult``.
- ``registry.py``: ``register(kind, factory)`` / ``driver_for``; kinds without a driver are
  refused with a 409.
- ``drivers/``: the kinds (``local``; each module registers itself on import).
- ``domains.py``: ``StorageDomains``, the use cases (create, list, show, check, delete) and
  each host's recorded reach.
"""

from corral.services.storage import drivers
from corral.services.storage.domains import StorageDomains
from corral.services.storage.driver import (
    DomainConfig,
    DriverContext,
    ReachResult,
    StorageDriver,
)
from corral.services.storage.registry import available_kinds, driver_for, register

__all__ = [
    "DomainConfig",
    "DriverContext",
    "ReachResult",
    "StorageDomains",
    "StorageDriver",
    "available_kinds",
    "driver_for",
    "drivers",
    "register",
]
