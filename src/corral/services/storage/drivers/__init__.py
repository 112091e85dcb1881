"""The storage domain kinds Corral ships: importing this package registers each one.

A new kind: a module here whose import calls
``corral.services.storage.registry.register(KIND, Factory)``, imported below.
"""

from corral.services.storage.drivers import iscsi, local, nfs, shared_dir

__all__ = ["iscsi", "local", "nfs", "shared_dir"]
