"""Storage domains: cluster-wide places for volumes, each kind served by a driver.

- ``driver.py``: ``StorageDriver`` (the Protocol a kind implements), ``DomainConfig``,
  ``DriverContext``, ``ReachResult``.
- ``registry.py``: ``register(kind, factory)`` / ``driver_for``; kinds without a driver are
  refused with a 409.
- ``drivers/``: the kinds (``local``, ``shared-dir``; each module registers itself on import).
- ``domains.py``: ``StorageDomains``, the use cases (create, list, show, check, delete) and
  each host's recorded reach.
- ``volumes.py``: ``DomainVolumes``, a domain's volumes (list, create, resize, delete).
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
from corral.services.storage.volumes import DomainVolumes

__all__ = [
    "DomainConfig",
    "DomainVolumes",
    "DriverContext",
    "ReachResult",
    "StorageDomains",
    "StorageDriver",
    "available_kinds",
    "driver_for",
    "drivers",
    "register",
]
