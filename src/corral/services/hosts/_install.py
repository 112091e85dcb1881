"""The part enrollment and certificate rotation share: stage the payload on the host, let the
installer restart libvirtd, check the result from here, then commit — or roll back."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from corral.errors import CorralError, HostError
from corral.hostsetup import Payload
from corral.hostsetup.remote import RemoteInstaller, abort_quietly
from corral.hostsetup.ssh import SshRunner, SshTarget
from corral.model.host import SshAccess
from corral.services.tasks import TaskContext

T = TypeVar("T")

#: A test hook: awaited with the name of each step (``activating``, ``verifying``,
#: ``committing``) so tests can break SSH or the host at a precise point.
Checkpoint = Callable[[str], Awaitable[None]]

#: How long the host waits for Corral's confirmation before it restores its old configuration.
CONFIRM_S = 60


async def no_checkpoint(_step: str) -> None:
    return None


def tls_uri(address: str, pkipath: Path) -> str:
    """``qemu+tls://ADDRESS/system?pkipath=…``: libvirt's client reads ``cacert.pem``,
    ``clientcert.pem`` and ``clientkey.pem`` there and checks the host's certificate against
    ADDRESS (an IP SAN or a DNS SAN)."""
    try:
        host = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    except ValueError:
        host = address
    return f"qemu+tls://{host}/system?pkipath={pkipath}"


def installer_for(ssh: SshAccess, known_hosts: Path) -> RemoteInstaller:
    target = SshTarget(ssh.destination, ssh.port, ssh.key_path)
    return RemoteInstaller(SshRunner(target, known_hosts))


async def install(
    installer: RemoteInstaller,
    payload: Payload,
    ctx: TaskContext,
    verify: Callable[[], Awaitable[T]],
    checkpoint: Checkpoint,
    confirm_s: int = CONFIRM_S,
) -> T:
    """Install ``payload``; ``verify()`` (run once libvirtd restarted with it) decides whether
    it stays. Whatever fails, the host ends with its previous configuration."""
    await ctx.progress(0.3, phase="uploading certificates and configuration")
    staging = await installer.stage_and_activate(payload, confirm_s)
    await checkpoint("activating")
    await ctx.progress(0.5, phase="restarting libvirtd with TLS")
    outcome = await installer.wait(staging, {"applied", "rolled-back", "failed"}, confirm_s)
    if outcome.state != "applied":
        note = await abort_quietly(installer, staging, "the installer did not apply")
        raise HostError(f"installing on the host failed: {outcome.message}; {note}")
    try:
        await checkpoint("verifying")
        await ctx.progress(0.7, phase="connecting over TLS")
        result = await verify()
        await checkpoint("committing")
        await ctx.progress(0.85, phase="confirming the new configuration")
        done = await installer.commit(staging)
    except CorralError as exc:
        note = await abort_quietly(installer, staging, exc.message)
        raise type(exc)(f"{exc.message}; {note}") from exc
    except asyncio.CancelledError:
        await abort_quietly(installer, staging, "cancelled by a user")
        raise
    if done.state != "committed":
        raise HostError(
            f"the host did not keep the new configuration ({done.state}: {done.message})"
        )
    return result
