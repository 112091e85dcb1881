"""``insecure``: QEMU's stream as plain TCP — guest memory readable (and writable) by anyone on
the path. Corral refuses it unless an admin allowed it for the cluster *and* the request asks
for it; enrolled hosts refuse it too until their configuration is reinstalled after that
(``migrate_tls_force``). The libvirt daemons still talk over TLS."""

from __future__ import annotations

from corral.model.migration import MigrationRequest
from corral.virt.transports.base import (
    MigrationEndpoint,
    MigrationTransport,
    Route,
    need_enrolled,
    need_peer_client,
)
from corral.virt.transports.tls import tls_route


class InsecureTransport(MigrationTransport):
    name = "insecure"
    description = "plain TCP, unencrypted (only when an admin allowed it for the cluster)"
    encrypted = False

    def check(
        self, source: MigrationEndpoint, destination: MigrationEndpoint, request: MigrationRequest
    ) -> list[str]:
        return [
            *need_enrolled(source, "source"),
            *need_enrolled(destination, "destination"),
            *need_peer_client(source),
        ]

    def route(self, source: MigrationEndpoint, destination: MigrationEndpoint) -> Route:
        return tls_route(destination, encrypt_stream=False)
