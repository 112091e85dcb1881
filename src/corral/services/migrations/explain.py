"""Why a migration failed, in words a person can act on (pure).

libvirt's message is often what the *destination* saw ("qemu unexpectedly closed the monitor:
… load of migration failed: Input/output error") or nothing useful ("client socket is
closed"). The real cause is usually on the source: QEMU's own ``error-desc`` (``query-migrate``)
and the source libvirtd's log. :func:`explain` puts the cause first and quotes the evidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from corral.virt.transports.ssh_failures import SshLogin, ssh_failure


@dataclass(frozen=True)
class FailureEvidence:
    vm: str
    source: str
    destination: str
    transport: str
    encrypted: bool
    libvirt_message: str
    #: The source QEMU's description of the failed migration (``query-migrate``).
    qemu_detail: str | None = None
    #: Error lines from the source host's libvirtd log since the migration started.
    log_lines: tuple[str, ...] = field(default_factory=tuple)
    #: Whether Corral still reaches the destination's libvirtd after the failure.
    destination_alive: bool = True


def _has(text: str, *needles: str) -> bool:
    low = text.lower()
    return any(n.lower() in low for n in needles)


#: The destination libvirt quotes in a peer-to-peer failure ("Failed to connect to remote
#: libvirt URI qemu+ssh://root@198.18.0.2:2222/system?…").
_SSH_URI = re.compile(
    r"qemu\+ssh://(?:(?P<user>[^@/\s]+)@)?(?P<host>\[[^\]]+\]|[^/:?\s]+)(?::(?P<port>\d+))?"
)


def _login(everything: str) -> SshLogin:
    found = _SSH_URI.search(everything)
    if found is None:
        return SshLogin(user="root", host=None)
    port = int(found["port"]) if found["port"] else 22
    return SshLogin(user=found["user"] or "root", host=found["host"].strip("[]"), port=port)


def _ssh_cause(e: FailureEvidence, everything: str) -> str | None:
    """ssh's own failure, quoted (its "Host key verification failed" must never read as a
    certificate problem)."""
    # Other transports' errors say "Connection refused" too, about libvirtd's TLS port.
    if e.transport != "ssh" and not _has(everything, "qemu+ssh://", "Host key verification"):
        return None
    cause = ssh_failure(everything, e.source, e.destination, _login(everything))
    return f"{e.source} could not reach {e.destination} over SSH: {cause}" if cause else None


def _cause(e: FailureEvidence) -> str:
    everything = " ".join([e.libvirt_message, e.qemu_detail or "", *e.log_lines])
    src, dst = e.source, e.destination
    over_ssh = _ssh_cause(e, everything)
    if over_ssh is not None:
        return over_ssh
    if _has(everything, "allows migration only with VIR_MIGRATE_TLS"):
        return (
            f"the hosts refuse unencrypted migration streams (migrate_tls_force = 1, set when "
            f"they were enrolled): after `corral cluster set allow_insecure_migration true`, "
            f"reinstall their configuration with `corral host rotate-certs {src}` and "
            f"`corral host rotate-certs {dst}`"
        )
    if _has(everything, "known issuer", "certificate", "x509", "verification"):
        return (
            f"a migration certificate was refused ({e.qemu_detail or e.libvirt_message}): "
            f"{dst}'s certificate must come from Corral's migration CA and name {dst}'s "
            f"address; `corral host rotate-certs {dst}` installs a fresh one"
        )
    if _has(
        everything, "Lost connection to destination", "client socket is closed", "End of file"
    ) and (not e.destination_alive or _has(everything, "Lost connection to destination")):
        return f"{src} lost its connection to the libvirt daemon of {dst} (did it stop or restart?)"
    if e.encrypted and _has(e.qemu_detail or "", "TLS channel"):
        return (
            f"the encrypted migration stream from {src} to {dst} broke: TLS found bytes that "
            "were changed or cut in transit (a faulty link, a middlebox, or an attacker "
            "between the hosts)"
        )
    if _has(everything, "canceled by client", "operation aborted"):
        return "the migration was aborted"
    return e.libvirt_message.strip().splitlines()[0] if e.libvirt_message.strip() else "unknown"


def explain(e: FailureEvidence) -> str:
    """``migration of VM web1 from h1 to h2 failed: CAUSE; the VM keeps running on h1
    (QEMU on h1: …; libvirt: …; h1's log: …)``."""
    evidence = []
    if e.qemu_detail:
        evidence.append(f"QEMU on {e.source}: {e.qemu_detail}")
    message = " ".join(e.libvirt_message.split())
    if message:
        evidence.append(f"libvirt: {message}")
    if e.log_lines:
        evidence.append(f"{e.source}'s libvirtd log: " + " | ".join(e.log_lines))
    return (
        f"migration of VM {e.vm} from {e.source} to {e.destination} over {e.transport} "
        f"failed: {_cause(e)}; the VM keeps running on {e.source}"
        + (f" ({'; '.join(evidence)})" if evidence else "")
    )
