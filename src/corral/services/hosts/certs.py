"""Rotating a host's certificates: new ones from the same CAs, installed like at enrollment,
then every running guest's VNC server re-reads its certificate (QMP ``display-reload``).

Taken over from an instance that stopped (:meth:`CertRotation.resume`): certificates saved
here since the task began were confirmed on the host, so only the VNC reload is left to do
(doing it again is harmless); otherwise the host, never confirmed, puts its previous
certificates back by itself, and the task fails saying to run it again.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from corral import store
from corral.errors import Conflict, CorralError, HostError
from corral.hostsetup import host_payload
from corral.model.host import RotateCertsRequest
from corral.model.pki import CertPurpose
from corral.model.task import TaskInfo
from corral.model.vm import VmState
from corral.services.hosts import _install
from corral.services.hosts._installer_base import HostInstallerBase
from corral.services.principal import Principal
from corral.services.tasks import TaskContext


class CertRotation(HostInstallerBase):
    async def rotate(
        self, principal: Principal, name: str, request: RotateCertsRequest
    ) -> TaskInfo:
        self._hosts.get(name)
        row = await self._db(lambda s: store.get_host(s, name))
        if row.address is None:
            raise Conflict(
                f"host {name!r} was added by URI, not enrolled: Corral issued no certificates "
                f"for it (remove it and `corral host enroll {name} ADDRESS --ssh root@ADDRESS`)"
            )
        ssh = request.ssh or store.host_ssh(row)
        if ssh is None:
            raise Conflict(
                f"no SSH access is recorded for host {name!r} (it was installed from a bundle): "
                "give one with --ssh root@ADDRESS"
            )
        if name in self._busy:
            raise Conflict(f"host {name!r} is busy rotating its certificates already")
        address, libvirt_id = row.address, row.libvirt_id
        self._busy.add(name)

        async def work(ctx: TaskContext) -> dict[str, Any]:
            installer = _install.installer_for(ssh, self.known_hosts)
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

            async def verify() -> None:
                if await self._hosts.identify(name, uri, itself=name) != libvirt_id:
                    raise HostError(f"{address} is no longer the libvirt daemon of host {name}")

            await _install.install(installer, payload, ctx, verify, self.checkpoint)
            self._pki.save_host_certs(name, certs)
            if request.ssh is not None:
                await self._db(lambda s: store.update_enrollment(s, name, address, request.ssh))
            await ctx.progress(0.9, phase="reloading the VNC certificates of running guests")
            reloaded = await self._reload_vnc(name)
            return {"host": name, "vnc_reloaded": reloaded}

        async def body(ctx: TaskContext) -> dict[str, Any]:
            try:
                return await self._audit.outcome(
                    principal.user, "host.rotate-certs", name, lambda: work(ctx)
                )
            finally:
                self._busy.discard(name)

        try:
            return await self._tasks.start("host.rotate-certs", name, principal, body, "queued")
        except BaseException:
            self._busy.discard(name)
            raise

    async def resume(self, task: TaskInfo) -> None:
        """Finish or fail a rotation another instance left (see the module)."""
        name = task.target

        async def settle() -> dict[str, Any]:
            if not await asyncio.to_thread(self._saved_since, name, task.created_at):
                raise Conflict(
                    f"the certificate rotation of host {name!r} was interrupted (the Corral "
                    "instance running it stopped) before the new certificates were confirmed: "
                    "the host puts its previous ones back by itself within "
                    f"{_install.CONFIRM_S} s and keeps working with them; run `corral host "
                    f"rotate-certs {name}` again (after that time)"
                )
            return {"host": name, "vnc_reloaded": await self._reload_vnc(name), "resumed": True}

        async def body(ctx: TaskContext) -> dict[str, Any]:
            self._busy.add(name)
            try:
                await ctx.progress(0.9, phase="checking whether the new certificates were kept")
                return await self._audit.outcome(task.created_by, "host.rotate-certs", name, settle)
            finally:
                self._busy.discard(name)

        await self._tasks.resume(task, body)

    def _saved_since(self, name: str, since: datetime) -> bool:
        """Whether certificates of ``name`` were saved since ``since`` (after the host
        confirmed them: see ``rotate``)."""
        path = self._pki.host_dir(name) / f"{CertPurpose.LIBVIRT_SERVER.value}.pem"
        try:
            saved = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        except OSError:
            return False
        return saved >= (since if since.tzinfo else since.replace(tzinfo=UTC))

    async def _reload_vnc(self, name: str) -> list[str]:
        """Running guests whose VNC server now serves the new certificate."""
        if not await self._hosts.wait_connected(name, 30):
            raise HostError(
                f"host {name} did not reconnect after libvirtd restarted; its new "
                "certificates are installed, running guests keep the old VNC certificate "
                "until they restart"
            )
        host = self._hosts.get(name)
        done = []
        for record in await host.list_domains():
            if record.state is VmState.RUNNING:
                try:
                    await host.consoles.reload_vnc_certificates(record.uuid)
                except CorralError as exc:
                    raise HostError(f"VM {record.name}: {exc.message}") from exc
                done.append(record.name)
        return done

    async def _plain_migration(self) -> bool:
        """Whether hosts installed now accept unencrypted migration streams (the cluster's
        ``allow_insecure_migration``; hosts keep what they got until reinstalled)."""
        if self._cluster is None:
            return False
        return (await self._cluster.get()).allow_insecure_migration
