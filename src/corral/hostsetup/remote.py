"""The installer driven over SSH: probe the host, stage the payload, activate, then commit or
abort. ``activate.sh`` runs detached on the host, so a lost connection never interrupts it
half-way: without a commit it restores the old configuration by itself."""

from __future__ import annotations

import asyncio
import hashlib
import re
import shlex
from dataclasses import dataclass

from corral.errors import CorralError, HostError
from corral.hostsetup.layout import HostPaths, Payload
from corral.hostsetup.ssh import SshRunner

#: The tools the installer needs on the host.
_TOOLS = ("tar", "sha256sum", "setsid", "awk", "mktemp", "head")
_PROBE = r"""
echo "arch=$(uname -m)"
echo "hostname=$(hostname 2>/dev/null)"
echo "fqdn=$(hostname -f 2>/dev/null)"
echo "libvirtd=$(command -v libvirtd)"
echo "qemu=$(ls /usr/bin/qemu-system-* /usr/libexec/qemu-kvm 2>/dev/null | tr '\n' ' ')"
echo "systemd=$([ -d /run/systemd/system ] && echo yes || echo no)"
echo "root=$([ "$(id -u)" = 0 ] && echo yes || echo no)"
echo "tools=$(for t in {tools}; do
    command -v $t >/dev/null || printf '%s ' $t; done)"
echo "host_uuid=$(sed -n 's/^[[:space:]]*host_uuid[[:space:]]*=[[:space:]]*"\([^"]*\)".*/\1/p' \
    /etc/libvirt/libvirtd.conf 2>/dev/null | tail -n 1)"
""".replace("{tools}", " ".join(_TOOLS))


#: The states activate.sh (and ``wait``) report.
_STATES = frozenset(
    {"applying", "applied", "committed", "rolled-back", "failed", "lost", "timeout"}
)
#: The sentences activate.sh (and ``wait``) write: the only words of the host Corral repeats.
_INSTALLER_SAYS = re.compile(
    "|".join(
        (
            r"installing",
            r"installed",
            r"installed; libvirtd listens for TLS",
            r"libvirtd restarted; waiting for the manager's confirmation",
            r"could not back up the current configuration",
            r"installing the files failed",
            r"libvirtd did not come back with TLS on port 16514 \(see its log\)",
            r"no confirmation from the manager within \d+ s",
            r"no answer from the installer within [\d.]+ s",
            r"the installer's directory is gone",
            r"no status",
        )
    )
)


@dataclass(frozen=True)
class HostFacts:
    arch: str
    hostname: str
    fqdn: str
    libvirtd: str
    qemu: list[str]
    systemd: bool
    host_uuid: str | None

    def dns_names(self) -> list[str]:
        names = [self.hostname, self.fqdn]
        return [n for n in dict.fromkeys(names) if n and n != "localhost"]


@dataclass(frozen=True)
class Outcome:
    state: str  # applied, committed, rolled-back, failed, lost
    message: str


class RemoteInstaller:
    def __init__(self, ssh: SshRunner, paths: HostPaths | None = None) -> None:
        self.ssh = ssh
        self.paths = paths or HostPaths()

    async def probe(self) -> HostFacts:
        result = await self.ssh.run("sh -s", input=_PROBE.encode(), seconds=30)
        facts = dict(line.split("=", 1) for line in result.text.splitlines() if "=" in line)
        who = self.ssh.target.destination
        if facts.get("root") != "yes":
            raise HostError(f"{who}: Corral must install as root on the host (ssh root@…)")
        if not facts.get("libvirtd"):
            raise HostError(
                f"{who}: libvirtd is not installed (apt-get install libvirt-daemon-system)"
            )
        qemu = facts.get("qemu", "").split()
        if not qemu:
            raise HostError(f"{who}: QEMU is not installed (apt-get install qemu-system-x86)")
        missing = [t for t in _TOOLS if t in facts.get("tools", "").split()]
        if facts.get("tools", "").strip():
            # Named from Corral's own list: the host's words are not repeated.
            raise HostError(f"{who}: the host lacks {' '.join(missing) or 'a tool Corral needs'}")
        return HostFacts(
            arch=facts.get("arch", ""),
            hostname=facts.get("hostname", ""),
            fqdn=facts.get("fqdn", ""),
            libvirtd=facts["libvirtd"],
            qemu=qemu,
            systemd=facts.get("systemd") == "yes",
            host_uuid=facts.get("host_uuid") or None,
        )

    async def stage_and_activate(self, payload: Payload, confirm_s: int) -> str:
        """Upload the payload into a fresh staging directory, check it arrived whole, start the
        installer detached; the staging directory's path. If the upload breaks, the host
        removes the staging directory itself."""
        data = payload.tar()
        digest = hashlib.sha256(data).hexdigest()
        root = shlex.quote(self.paths.staging_root)
        script = f"""
set -e
umask 077
mkdir -p {root}
d=$(mktemp -d {root}/XXXXXXXX)
trap 'rm -rf "$d"' EXIT
trap 'rm -rf "$d"; exit 1' HUP INT TERM PIPE
head -c {len(data)} >"$d/payload.tar"
if ! echo "{digest}  $d/payload.tar" | sha256sum -c --status; then
    echo "the upload arrived damaged" >&2; exit 3
fi
tar -xf "$d/payload.tar" -C "$d"
rm -f "$d/payload.tar"
trap - EXIT HUP INT TERM PIPE
setsid sh "$d/activate.sh" "$d" confirm {int(confirm_s)} </dev/null >"$d/activate.log" 2>&1 &
echo "$d"
"""
        result = await self.ssh.run(
            f"sh -c {shlex.quote(script)}", input=data, seconds=60, check=False
        )
        if result.exit_status == 3:
            raise HostError("the upload arrived damaged on the host: try again")
        if result.exit_status != 0:
            raise HostError(f"the host's installer did not start: {result.failure()}")
        staging = result.text.strip().splitlines()[-1] if result.text.strip() else ""
        if not staging.startswith(self.paths.staging_root + "/"):
            raise HostError(f"the host's installer did not start: {result.failure()}")
        return staging

    async def wait(
        self, staging: str, final: set[str], seconds: float = 60, reason: str = ""
    ) -> Outcome:
        """Wait on the host (one SSH command) until the installer reports one of ``final``.
        The outcome's message is one of the installer's own sentences (or ``reason``, the one
        Corral gave when it aborted): anything else the host wrote is not passed on."""
        d = shlex.quote(staging)
        words = "|".join(sorted(final))
        ticks = int(seconds * 10)
        script = f"""
i=0
while [ $i -lt {ticks} ]; do
    if [ -f {d}/status ]; then
        case "$(head -n 1 {d}/status)" in
        rolled-back|failed) cat {d}/status; exit 0;;
        {words}) cat {d}/status; exit 0;;
        esac
    fi
    [ -d {d} ] || {{ echo lost; echo "the installer's directory is gone"; exit 0; }}
    sleep 0.1; i=$((i + 1))
done
echo timeout; echo "no answer from the installer within {seconds:g} s"
"""
        result = await self.ssh.run(f"sh -c {shlex.quote(script)}", seconds=seconds + 30)
        lines = result.text.splitlines() or ["lost", "no status"]
        state = lines[0].strip()
        said = " ".join(x.strip() for x in lines[1:] if x.strip())
        if state not in _STATES:
            return Outcome("lost", "the installer's status cannot be read")
        if said and said != reason and not _INSTALLER_SAYS.fullmatch(said):
            said = "the installer's own words are not shown"
        return Outcome(state, said)

    async def commit(self, staging: str) -> Outcome:
        d = shlex.quote(staging)
        await self.ssh.run(f"touch {d}/commit", seconds=30)
        outcome = await self.wait(staging, {"committed", "rolled-back", "failed"}, seconds=30)
        await self.cleanup(staging)
        return outcome

    async def abort(self, staging: str, reason: str) -> Outcome:
        d = shlex.quote(staging)
        await self.ssh.run(f"printf '%s' {shlex.quote(reason)} >{d}/abort", seconds=30)
        outcome = await self.wait(staging, {"rolled-back", "failed"}, seconds=60, reason=reason)
        await self.cleanup(staging)
        return outcome

    async def cleanup(self, staging: str) -> None:
        d = shlex.quote(staging)
        root = shlex.quote(self.paths.staging_root)
        await self.ssh.run(f"rm -rf {d}; rmdir {root} 2>/dev/null; true", seconds=30, check=False)


async def abort_quietly(installer: RemoteInstaller, staging: str, reason: str) -> str:
    """Abort; if the host cannot be reached it rolls back by itself at its time-out. A
    sentence for the error message."""
    try:
        outcome = await asyncio.shield(installer.abort(staging, reason))
    except (CorralError, asyncio.CancelledError) as exc:
        why = exc.message if isinstance(exc, CorralError) else "cancelled"
        return (
            f"the host could not be told to roll back ({why}); "
            "it restores its previous configuration by itself when the confirmation time runs out"
        )
    if outcome.state == "rolled-back":
        return "the host's previous configuration was restored"
    if outcome.state == "lost":
        # No commit ever reached it, and without one the installer only ends by restoring the
        # old configuration: it rolled back by itself before the abort arrived.
        return (
            "the host had already restored its previous configuration by itself "
            f"({outcome.message})"
        )
    return f"rolling back on the host reported {outcome.state}: {outcome.message}"
