"""Enrolling a host: over SSH (a task) or as a bundle an administrator installs by hand.

Over SSH: check the host (root, libvirtd, QEMU, tools), issue its certificates, stage them with
the configuration, let the host-side installer back up and replace the files and restart
libvirtd with TLS, connect over ``qemu+tls://`` as Corral will, and only then confirm. Any
failure — including SSH dying half-way — leaves the host as it was and records nothing, so
enrollment can simply be run again.

Taken over from an instance that stopped (:meth:`HostEnrollment.resume`): the host is recorded
last, so a recorded host was enrolled (done); otherwise the host's installer, never confirmed,
restores its previous configuration by itself, and the task fails saying to run it again.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from typing import Any

from corral import store
from corral.errors import Conflict, CorralError, NotFound
from corral.hostsetup import HostPaths, host_payload
from corral.hostsetup.bundle import bundle_files
from corral.model.host import BundleFile, HostBundle, HostBundleRequest, HostEnroll
from corral.model.task import TaskInfo
from corral.services.host_agents import HostAgents
from corral.services.hosts import _install
from corral.services.hosts._installer_base import HostInstallerBase
from corral.services.principal import Principal
from corral.services.tasks import TaskContext

log = logging.getLogger(__name__)


class HostEnrollment(HostInstallerBase):
    #: How long the host waits for Corral's confirmation (tests shorten it).
    confirm_s: int = _install.CONFIRM_S
    #: Installs the host agent once the host is enrolled (set by ``Services``).
    agents: HostAgents | None = None

    async def _check_new(self, name: str, address: str) -> None:
        self._hosts.check_name_free(name)
        if name in self._busy:
            raise Conflict(f"host {name!r} is being enrolled already; see `corral task list`")
        rows = await self._db(store.list_hosts)
        twin = next((r.name for r in rows if r.address == address), None)
        if twin is not None:
            raise Conflict(f"address {address} is already host {twin!r}'s")

    async def enroll(self, principal: Principal, request: HostEnroll) -> TaskInfo:
        name, address = request.name, request.address
        await self._check_new(name, address)
        key = request.ssh.key_path
        if key is not None and not await asyncio.to_thread(_is_file, key):
            raise NotFound(f"ssh.key_path: no such file on the Corral server: {key}")
        self._busy.add(name)

        async def body(ctx: TaskContext) -> dict[str, Any]:
            try:
                return await self._audit.outcome(
                    principal.user, "host.enroll", name, lambda: self._enroll(ctx, request)
                )
            finally:
                self._busy.discard(name)

        try:
            return await self._tasks.start("host.enroll", name, principal, body, "queued")
        except BaseException:
            self._busy.discard(name)
            raise

    async def resume(self, task: TaskInfo) -> None:
        """Finish or fail an enrollment another instance left (see the module)."""
        name = task.target

        async def settle() -> dict[str, Any]:
            row = await self._db(lambda s: store.find_host(s, name))
            if row is None:
                raise Conflict(_not_recorded(name, self.confirm_s))
            connected = name in {h.name for h in self._hosts.all() if h.connected}
            agent = await self._agent(name) if connected else "not checked: host not connected"
            return {"host": name, "uri": row.uri, "agent": agent, "resumed": True}

        async def body(ctx: TaskContext) -> dict[str, Any]:
            await ctx.progress(0.95, phase="checking whether the host was recorded")
            return await self._audit.outcome(task.created_by, "host.enroll", name, settle)

        await self._tasks.resume(task, body)

    async def _enroll(self, ctx: TaskContext, request: HostEnroll) -> dict[str, Any]:
        name, address = request.name, request.address
        installer = _install.installer_for(request.ssh, self.known_hosts)
        await ctx.progress(0.05, phase="checking the host over SSH")
        facts = await installer.probe()
        await ctx.progress(0.2, phase="issuing certificates")
        certs = await asyncio.to_thread(self._pki.issue_host, name, address, facts.dns_names())
        payload = host_payload(
            certs,
            address,
            facts.host_uuid or str(uuid.uuid4()),
            plain_migration=await self._plain_migration(),
        )
        uri = _install.tls_uri(address, self._pki.libvirt_pkipath)

        async def verify() -> str | None:
            return await self._hosts.identify(name, uri)

        libvirt_id = await _install.install(
            installer, payload, ctx, verify, self.checkpoint, self.confirm_s
        )
        await ctx.progress(0.95, phase="registering the host")
        self._pki.save_host_certs(name, certs)
        await self._hosts.register(
            name, uri, request.accelerator, libvirt_id, address=address, ssh=request.ssh
        )
        return {"host": name, "uri": uri, "arch": facts.arch, "agent": await self._agent(name)}

    async def _agent(self, name: str) -> str:
        """Install the host agent now (later calls install it too when it is missing, so a
        failure here is reported, not fatal: the host is enrolled)."""
        if self.agents is None:
            return "not installed (no agent service)"
        try:
            return str((await self.agents.ensure(name))["version"])
        except CorralError as exc:
            log.warning("host %s enrolled, but its agent was not installed: %s", name, exc)
            return f"not installed yet: {exc.message}"

    async def bundle(self, request: HostBundleRequest) -> HostBundle:
        """Everything ``host enroll`` would install, as files with an ``install.sh``; the
        certificates are kept as pending until ``corral host add NAME URI``."""
        name, address = request.name, request.address
        await self._check_new(name, address)
        certs = await asyncio.to_thread(self._pki.issue_host, name, address)
        payload = host_payload(
            certs, address, str(uuid.uuid4()), plain_migration=await self._plain_migration()
        )
        uri = _install.tls_uri(address, self._pki.libvirt_pkipath)
        self._pki.save_pending(name, certs, address)
        files = bundle_files(payload, name, uri, HostPaths().staging_root)
        return HostBundle(
            name=name,
            uri=uri,
            files=[BundleFile(path=p, mode=m, content=data.decode()) for p, data, m in files],
        )

    async def _plain_migration(self) -> bool:
        """Whether hosts installed now accept unencrypted migration streams (the cluster's
        ``allow_insecure_migration``; hosts keep what they got until reinstalled)."""
        if self._cluster is None:
            return False
        return (await self._cluster.get()).allow_insecure_migration


def _not_recorded(name: str, confirm_s: int) -> str:
    return (
        f"the enrollment of host {name!r} was interrupted (the Corral instance running it "
        "stopped) before the host was recorded: Corral recorded nothing, and a host whose new "
        f"configuration was not confirmed puts its previous one back by itself within {confirm_s} "
        f"s; run `corral host enroll {name} …` again (after that time)"
    )


def _is_file(path: str) -> bool:
    try:
        return Path(path).is_file()
    except OSError:  # a name too long for the file system, say: not a file there
        return False
