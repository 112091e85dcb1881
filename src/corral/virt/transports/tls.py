"""``tls``, the default: QEMU's native TLS with Corral's migration certificates, verified both
ways (``VIR_MIGRATE_TLS``). The source's libvirtd reaches the destination's over
``qemu+tls://`` with its own client certificate; QEMU's stream goes straight to the
destination's enrolled address, which its migration certificate names."""

from __future__ import annotations

from corral.model.migration import MigrationRequest
from corral.virt.transports.base import (
    MigrationEndpoint,
    MigrationFlag,
    MigrationTransport,
    Route,
    host_in_uri,
    need_enrolled,
    need_peer_client,
)


def tls_route(destination: MigrationEndpoint, *, encrypt_stream: bool) -> Route:
    """The route of the ``tls`` and ``insecure`` transports: TLS control connection between
    the libvirt daemons, QEMU's stream to the destination's address (TLS or not)."""
    assert destination.address is not None  # check() refused hosts without one
    host = host_in_uri(destination.address)
    return Route(
        destination_uri=f"qemu+tls://{host}/system",
        stream_uri=f"tcp://{host}",
        flags=frozenset({MigrationFlag.TLS}) if encrypt_stream else frozenset(),
    )


class TlsTransport(MigrationTransport):
    name = "tls"
    description = "QEMU native TLS, mutual X.509 from Corral's migration CA (the default)"
    encrypted = True

    def check(
        self, source: MigrationEndpoint, destination: MigrationEndpoint, request: MigrationRequest
    ) -> list[str]:
        return [
            *need_enrolled(source, "source"),
            *need_enrolled(destination, "destination"),
            *need_peer_client(source),
        ]

    def route(self, source: MigrationEndpoint, destination: MigrationEndpoint) -> Route:
        return tls_route(destination, encrypt_stream=True)
