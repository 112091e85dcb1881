"""The interface every storage domain kind implements (``StorageDriver``), and what it is
built from (``DomainConfig``, ``DriverContext``).

A driver serves one domain. It reaches hosts only through ``corral.virt`` (a host's
``LibvirtHost``: libvirt pools, volumes, streams) or the host agent (``DriverContext``), never
the store: ``StorageDomainService`` records what a driver reports. Kinds register a factory
in ``corral.services.storage.registry``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from corral.model.storage_domain import DiskSource, OperationSupport, StorageDomainKind
from corral.virt import LibvirtHost, VolumeRef

#: ``await agent(host_name, op, args, timeout_s=…)``: one host-agent call (see the host agent's
#: manager side); raises a Corral error naming the host, the op and the agent's message.
AgentCall = Callable[..., Awaitable[dict[str, Any]]]
#: ``await agent_stream(host_name, op, args, timeout_s=…)``: a host-agent call with a body
#: (``corral.services.host_agent_stream.AgentStream``).
AgentStreamCall = Callable[..., Awaitable[Any]]


class ImageWriter(Protocol):
    """Fills a new volume with an upload's bytes: ``finish`` once all are written, else
    ``abort``, which removes it (an upload leaves a whole volume or none)."""

    @property
    def done(self) -> int: ...

    async def write(self, data: bytes) -> None: ...

    async def finish(self) -> object: ...

    async def abort(self) -> None: ...


@dataclass(frozen=True)
class DomainConfig:
    """One domain as created: ``settings`` are the create request's kind-specific fields
    (shared-dir: ``path``; nfs: ``server``, ``export``; iscsi: ``portal``, ``target``);
    ``marker`` is a random token the domain owns (``shared-dir`` writes it into its marker
    file; other kinds may use it or not)."""

    name: str
    kind: StorageDomainKind
    settings: Mapping[str, str] = field(default_factory=dict)
    marker: str | None = None


@dataclass(frozen=True)
class DriverContext:
    """What Corral hands every driver besides its domain: the host-agent call (None while
    no agent service is wired) and the one with a body (uploads into nfs)."""

    agent: AgentCall | None = None
    agent_stream: AgentStreamCall | None = None


@dataclass(frozen=True)
class ReachResult:
    """A check's verdict for one host: reachable (with the domain's size and free space as
    that host sees it) or not, and why."""

    host: str
    reachable: bool
    reason: str | None = None
    capacity_bytes: int | None = None
    free_bytes: int | None = None


def operation(op: Any, reason: str | None = None) -> OperationSupport:
    """``OperationSupport`` for ``op``: supported unless a ``reason`` says why not."""
    return OperationSupport(operation=op, supported=reason is None, reason=reason)


class StorageDriver(Protocol):
    """One storage domain as seen from Corral's hosts.

    Rules every kind keeps:
    - ``check`` realises the domain on each host given (defines/starts what the host needs,
      idempotent) and proves the host reaches it; on a host it does not reach, it leaves
      nothing behind (no pool defined) and says why in the result. Hosts are given in a
      stable order, the first ones preferred (e.g. to write a marker through).
    - ``forget`` undoes ``check``'s realisation on one host (the domain is deleted, or the
      host no longer reaches it); the data in the domain is never touched.
    - Volume calls go to one host that reaches the domain; ``name`` is a volume name (no
      path). Errors are Corral errors (NotFound, Conflict, InsufficientResources…).
    - ``disk_source`` says how a guest on ``host`` opens volume ``volume``.
    - ``holds`` says whether a disk path a domain definition names (``LibvirtHost.disk_users``
      keys) is a volume of this domain: deleting a domain in use is refused with it.
    """

    config: DomainConfig

    def operations(self) -> list[OperationSupport]:
        """Each ``VolumeOperation``: supported, or why not for this kind."""
        ...

    async def check(self, hosts: Sequence[LibvirtHost], *, full: bool) -> list[ReachResult]:
        """Realise and prove the domain on ``hosts`` (connected ones), one result each.
        ``full``: ``hosts`` are every connected host (creation, ``storage-domain check``), so
        the driver may (re-)establish what proves reach, e.g. write a marker; otherwise only
        these hosts are checked against what exists (a host that connected)."""
        ...

    async def forget(self, host: LibvirtHost) -> None:
        """Undo the realisation on ``host`` (nothing to do: no error)."""
        ...

    async def list_volumes(self, host: LibvirtHost) -> list[VolumeRef]: ...

    async def free_bytes(self, host: LibvirtHost) -> int:
        """Free space in the domain now, as ``host`` sees it."""
        ...

    async def create_volume(self, host: LibvirtHost, name: str, size_bytes: int) -> VolumeRef:
        """A blank qcow2 volume (Conflict if the name is taken)."""
        ...

    async def create_linked_clone(self, host: LibvirtHost, name: str, base: str) -> VolumeRef:
        """A qcow2 volume standing on volume ``base`` of the same domain."""
        ...

    async def resize_volume(self, host: LibvirtHost, name: str, size_bytes: int) -> None: ...

    async def delete_volume(self, host: LibvirtHost, name: str) -> None: ...

    def disk_source(self, host: LibvirtHost, volume: VolumeRef) -> DiskSource: ...

    def holds(self, disk_path: str) -> bool: ...


@runtime_checkable
class UploadTarget(Protocol):
    """A driver that takes uploads (the image library's): kinds whose ``operations`` say
    ``upload`` is supported implement it too."""

    async def open_upload(
        self, host: LibvirtHost, name: str, fmt: str, capacity_bytes: int, total_bytes: int
    ) -> ImageWriter:
        """Volume ``name`` made (never over another) to take exactly ``total_bytes``."""
        ...
