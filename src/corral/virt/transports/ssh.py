"""``ssh``: the whole migration (control and QEMU's stream) tunnelled through the libvirt
connection the source's libvirtd opens over ``qemu+ssh://`` (``VIR_MIGRATE_TUNNELLED``).

The source host's root must reach the destination's sshd with a key and a known host key, as
for ``virsh migrate --p2p --tunnelled qemu+ssh://``. Options (Corral's
``[migration_transports.ssh]`` table): ``command`` (the ssh client on the source host, e.g. a
wrapper adding ``-o UserKnownHostsFile=…``) and ``keyfile`` (a private key on the source
host). The destination's user and port are the SSH access recorded at enrollment (default
``root``, 22).
"""

from __future__ import annotations

from urllib.parse import urlencode

from corral.model.migration import MigrationRequest, StorageMode
from corral.virt.transports.base import (
    MigrationEndpoint,
    MigrationFlag,
    MigrationTransport,
    Route,
    host_in_uri,
)


class SshTransport(MigrationTransport):
    name = "ssh"
    description = "tunnelled through the libvirt daemons over qemu+ssh:// (SSH encrypts)"
    encrypted = True

    def check(
        self, source: MigrationEndpoint, destination: MigrationEndpoint, request: MigrationRequest
    ) -> list[str]:
        problems = []
        if destination.address is None and destination.ssh_destination is None:
            problems.append(
                f"destination host {destination.name} has no address or SSH access on record "
                "(it was added by URI): enroll it to migrate to it over ssh"
            )
        if request.parallel_connections and request.parallel_connections > 1:
            problems.append(
                "transport ssh tunnels one stream: parallel connections (multifd) need "
                "transport tls"
            )
        if request.postcopy:
            problems.append("libvirt cannot switch a tunnelled migration to post-copy: use tls")
        if request.storage is StorageMode.COPY:
            problems.append(
                "transport ssh cannot copy disks (libvirt does not tunnel the disk copy): use "
                "transport tls with storage copy"
            )
        return problems

    def route(self, source: MigrationEndpoint, destination: MigrationEndpoint) -> Route:
        user, host = "root", destination.address
        if destination.ssh_destination:
            user, _, named = destination.ssh_destination.rpartition("@")
            user = user or "root"
            host = host or named
        assert host is not None  # check() refused hosts without an address
        port = f":{destination.ssh_port}" if destination.ssh_port not in (None, 22) else ""
        query: dict[str, str] = {"no_tty": "1"}
        for key in ("command", "keyfile"):
            if self.options.get(key):
                query[key] = self.options[key]
        return Route(
            destination_uri=f"qemu+ssh://{user}@{host_in_uri(host)}{port}/system?"
            + urlencode(query),
            flags=frozenset({MigrationFlag.TUNNELLED}),
        )
