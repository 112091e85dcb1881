"""The only package that imports libvirt: typed async access to libvirt hosts.

Everything blocking runs in worker threads under a timeout; libvirt errors become
``corral.errors`` classes at this boundary (``map_libvirt_errors``); events and console streams
are driven by libvirtaio in the asyncio loop (``ensure_event_loop_impl``).
"""

from corral.virt._errors import map_libvirt_errors
from corral.virt._eventloop import ensure_event_loop_impl
from corral.virt._probe import HEAD_BYTES, ImageProbe, probe_header
from corral.virt._storage import SERIAL_LOG_SUFFIX
from corral.virt._upload import VolumeWriter
from corral.virt.console import SerialConsole
from corral.virt.host import LibvirtHost
from corral.virt.types import DomainEvent, DomainRecord, VolumeRef

__all__ = [
    "HEAD_BYTES",
    "SERIAL_LOG_SUFFIX",
    "DomainEvent",
    "DomainRecord",
    "ImageProbe",
    "LibvirtHost",
    "SerialConsole",
    "VolumeRef",
    "VolumeWriter",
    "ensure_event_loop_impl",
    "map_libvirt_errors",
    "probe_header",
]
