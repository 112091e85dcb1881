"""``ssh``: the whole migration (control and QEMU's stream) tunnelled through the libvirt
connection the source's libvirtd opens over ``qemu+ssh://`` (``VIR_MIGRATE_TUNNELLED``).

The source host's root must reach the destination's sshd with a key and a known host key, as
for ``virsh migrate --p2p --tunnelled qemu+ssh://``. Options (Corral's
``[migration_transports.ssh]`` table): ``command`` (the ssh client on the source host, e.g. a
wrapper adding ``-o UserKnownHostsFile=…``) and ``keyfile`` (a private key on the source
host). The destination's user and port are the SSH access recorded at enrollment (default
``root``, 22).

Prerequisites (:meth:`SshTransport.prerequisites`): the source host runs the very ssh command
libvirt will run for the migration (same binary, user, port, key, ``BatchMode``), with
``true`` as the remote command. A host key the source does not know, a refused key or an sshd
that does not answer is then a refusal naming the cause before anything moves.
"""

from __future__ import annotations

from urllib.parse import urlencode

from corral.model.migration import MigrationRequest, StorageMode
from corral.virt.transports.base import (
    CommandResult,
    MigrationEndpoint,
    MigrationFlag,
    MigrationTransport,
    Route,
    RunOnSource,
    host_in_uri,
)
from corral.virt.transports.ssh_failures import SshLogin, ssh_failure

#: How long the probe's ssh may take to connect (libvirt's own has no limit).
PROBE_CONNECT_TIMEOUT_S = 10


def ssh_login(destination: MigrationEndpoint) -> SshLogin | None:
    """Where the source's ssh logs in: the enrolled address (else the host of the recorded
    SSH access) as the recorded user (default root) and port; None without either."""
    user, host = "root", destination.address
    if destination.ssh_destination:
        named_user, _, named = destination.ssh_destination.rpartition("@")
        user = named_user or "root"
        host = host or named
    if host is None:
        return None
    return SshLogin(user=user, host=host, port=destination.ssh_port or 22)


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
        login = ssh_login(destination)
        assert login is not None and login.host is not None  # check() refused hosts without
        port = f":{login.port}" if login.port != 22 else ""
        query: dict[str, str] = {"no_tty": "1"}
        for key in ("command", "keyfile"):
            if self.options.get(key):
                query[key] = self.options[key]
        return Route(
            destination_uri=f"qemu+ssh://{login.user}@{host_in_uri(login.host)}{port}/system?"
            + urlencode(query),
            flags=frozenset({MigrationFlag.TUNNELLED}),
        )

    def probe_argv(self, login: SshLogin) -> list[str]:
        """The ssh command libvirt runs for ``qemu+ssh://`` with this transport's options (its
        order: ``-p`` only for another port, ``-l``, ``-i``, ``-T -e none``, ``BatchMode``
        for ``no_tty``), with a connect timeout and ``true`` instead of libvirt's proxy."""
        assert login.host is not None
        argv = [self.options.get("command") or "ssh"]
        if login.port != 22:
            argv += ["-p", str(login.port)]
        argv += ["-l", login.user]
        if self.options.get("keyfile"):
            argv += ["-i", self.options["keyfile"]]
        argv += ["-T", "-e", "none", "-o", "BatchMode=yes"]
        argv += ["-o", f"ConnectTimeout={PROBE_CONNECT_TIMEOUT_S}", "--", login.host, "true"]
        return argv

    async def prerequisites(
        self, source: MigrationEndpoint, destination: MigrationEndpoint, run: RunOnSource
    ) -> list[str]:
        login = ssh_login(destination)
        if login is None:
            return []  # check() already says the destination has no address
        result = await run(self.probe_argv(login))
        if result.exit_status == 0:
            return []
        return [self._failure(source.name, destination.name, login, result)]

    def _failure(
        self, source: str, destination: str, login: SshLogin, result: CommandResult
    ) -> str:
        command = self.options.get("command")
        if command and result.exit_status in (126, 127):
            return (
                f"the ssh transport's command {command} cannot run on {source} (exit status "
                f"{result.exit_status}: missing or not executable there): install it on every "
                "host or change [migration_transports.ssh] command"
            )
        known = ssh_failure(result.output, source, destination, login)
        if known is not None:
            return known
        return (
            f"root's ssh on {source} could not log in to {destination} as {login.user} "
            f"({login.host} port {login.port}, exit status {result.exit_status}): run `ssh -o "
            f"BatchMode=yes -l {login.user} {login.host} true` on {source} to see why"
        )
