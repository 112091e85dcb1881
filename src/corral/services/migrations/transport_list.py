"""``GET /migration/transports``: every transport, whether a migration may ask for it, and
whether it can work between the hosts — its checks and its prerequisites on the hosts.

With a pair (``?source=h1&destination=h2``) only that pair is checked. Without, every ordered
pair of connected enrolled hosts is (hosts added by URI get no certificates and no SSH access
from Corral, so no transport of Corral's could be checked there): a transport is ``usable``
when no pair fails, and its ``reason`` names each pair that does. A pair whose prerequisites
Corral cannot check (no SSH access to its source) does not make it unusable; the ``reason``
of a usable transport says which pairs went unchecked.
"""

from __future__ import annotations

import asyncio
import itertools

from corral.errors import InvalidRequest
from corral.model.migration import MigrationRequest, TransportInfo
from corral.services.hosts import HostService
from corral.services.migrations.migrate import VmMigration
from corral.services.migrations.readiness import Readiness, TransportReadiness
from corral.virt.transports import MigrationEndpoint, MigrationTransport

#: Probes at once (each is an ssh process on this machine and one on a host).
PARALLEL = 4

Pair = tuple[MigrationEndpoint, MigrationEndpoint]


def summary(transport: TransportInfo, found: list[tuple[Pair, Readiness]]) -> TransportInfo:
    """The transport's ``usable`` and ``reason`` from what each pair showed (pure)."""
    one = len(found) == 1

    def named(pair: Pair, text: str) -> str:
        return text if one else f"{pair[0].name} → {pair[1].name}: {text}"

    failing = [named(pair, p) for pair, ready in found for p in ready.problems]
    if failing:
        return transport.model_copy(update={"usable": False, "reason": "; ".join(failing)})
    unknown = [named(pair, ready.unknown) for pair, ready in found if ready.unknown]
    return transport.model_copy(update={"usable": True, "reason": "; ".join(unknown) or None})


class TransportList:
    def __init__(
        self, migrate: VmMigration, hosts: HostService, readiness: TransportReadiness
    ) -> None:
        self._migrate = migrate
        self._hosts = hosts
        self._readiness = readiness
        self._slots = asyncio.Semaphore(PARALLEL)

    async def survey(
        self, source: str | None = None, destination: str | None = None
    ) -> list[TransportInfo]:
        pairs = await self._pairs(source, destination)
        listed = []
        for info in await self._migrate.transport_choices():
            transport = self._migrate.transport(info.name)
            found = await asyncio.gather(*(self._check(transport, pair) for pair in pairs))
            listed.append(summary(info, list(zip(pairs, found, strict=True))))
        return listed

    async def _pairs(self, source: str | None, destination: str | None) -> list[Pair]:
        if (source is None) != (destination is None):
            raise InvalidRequest("give both source and destination, or neither")
        if source is not None and destination is not None:
            if source == destination:
                raise InvalidRequest("source and destination must be two different hosts")
            endpoint = self._migrate.endpoint
            return [(await endpoint(source), await endpoint(destination))]
        names = sorted(h.name for h in self._hosts.all() if h.connected)
        known = [await self._migrate.endpoint(name) for name in names]
        enrolled = [end for end in known if end.address is not None]
        return list(itertools.permutations(enrolled, 2))

    async def _check(self, transport: MigrationTransport, pair: Pair) -> Readiness:
        source, destination = pair
        request = MigrationRequest(to=destination.name, transport=transport.name)
        problems = transport.check(source, destination, request)
        if problems:
            return Readiness(problems=tuple(problems))
        async with self._slots:
            return await self._readiness.check(transport, source, destination)
