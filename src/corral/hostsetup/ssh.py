"""Commands on a host over SSH, with the system's ``ssh`` binary.

Why the binary and not a Python SSH library: an administrator's ``ssh root@h2`` already works
the way their site needs it (agent, ``~/.ssh/config``, jump hosts, certificates, hardware
keys), and libvirt's own ``qemu+ssh://`` transport uses the same binary; Corral adds no
second SSH stack to keep patched. Options make it fit for unattended use: no prompts
(``BatchMode``), bounded connects and keep-alives, and host keys pinned on first use in
Corral's own ``known_hosts`` (``DATA_DIR/ssh/known_hosts``), so a host whose key changes
later is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

from corral.errors import HostError, HostUnreachable, OperationTimeout

#: user@host: no option injection (nothing starts with "-"), no spaces or shell characters.
DESTINATION_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,31}@[A-Za-z0-9][A-Za-z0-9.:_-]{0,252}$"
_DESTINATION = re.compile(DESTINATION_PATTERN)


@dataclass(frozen=True)
class SshTarget:
    destination: str  # user@host
    port: int = 22
    key_path: str | None = None

    def __post_init__(self) -> None:
        if not _DESTINATION.match(self.destination):
            raise ValueError(f"SSH destination must look like root@HOST, not {self.destination!r}")


@dataclass(frozen=True)
class SshResult:
    exit_status: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode(errors="replace")

    def failure(self) -> str:
        """Why it failed, in Corral's words. What ssh or the host printed is never passed on:
        ssh quotes the far end (its version line, its disconnect message) and a command's
        output is the host's; either would then speak in Corral's answers, tasks and logs."""
        if self.exit_status != 255:
            return f"the command on the host failed with exit status {self.exit_status}"
        said = self.stderr.decode(errors="replace").lower()
        return next(
            (sentence for hint, sentence in _SSH_FAILURES if hint in said),
            "ssh failed (exit status 255)",
        )


#: What ssh's own error says, recognised by its words, and the sentence Corral gives instead.
_SSH_FAILURES = (
    ("could not resolve hostname", "the host name does not resolve"),
    ("connection refused", "the connection was refused (is sshd running there?)"),
    ("timed out", "the connection timed out"),
    ("no route to host", "there is no route to the host"),
    ("network is unreachable", "the network is unreachable"),
    ("host key verification failed", "the host's key is not the one Corral recorded"),
    ("identification has changed", "the host's key is not the one Corral recorded"),
    ("permission denied", "the host refused the key for that user"),
    ("load key", "the key file cannot be used (missing, unreadable or not a private key)"),
    ("no such identity", "the key file does not exist"),
    ("too many authentication failures", "the host refused the key for that user"),
    ("connection closed", "the host closed the connection"),
    ("connection reset", "the host reset the connection"),
    ("protocol", "the far end does not speak SSH"),
    ("banner", "the far end does not speak SSH"),
)


class SshRunner:
    """Runs one command per SSH connection (each is short; no multiplexing state to leak)."""

    def __init__(self, target: SshTarget, known_hosts: Path, connect_timeout: float = 10) -> None:
        self.target = target
        self.known_hosts = known_hosts
        self.connect_timeout = connect_timeout

    def argv(self, command: str) -> list[str]:
        options = {
            "BatchMode": "yes",
            "StrictHostKeyChecking": "accept-new",
            "UserKnownHostsFile": str(self.known_hosts),
            "ConnectTimeout": str(int(self.connect_timeout)),
            "ServerAliveInterval": "5",
            "ServerAliveCountMax": "3",
            "LogLevel": "ERROR",
        }
        argv = ["ssh", "-T", "-p", str(self.target.port)]
        if self.target.key_path:
            argv += ["-i", self.target.key_path, "-o", "IdentitiesOnly=yes"]
        for key, value in options.items():
            argv += ["-o", f"{key}={value}"]
        return [*argv, self.target.destination, command]

    async def run(
        self, command: str, *, input: bytes = b"", seconds: float = 60, check: bool = True
    ) -> SshResult:
        """Run ``command`` (a shell command line on the host); HostUnreachable when SSH itself
        failed (exit 255), HostError for another non-zero exit if ``check``."""
        self.known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        process = await asyncio.create_subprocess_exec(
            *self.argv(command),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        try:
            async with asyncio.timeout(seconds):
                stdout, stderr = await process.communicate(input)
        except TimeoutError as err:
            raise OperationTimeout(
                f"ssh {self.target.destination}: no answer within {seconds:g} s"
            ) from err
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        result = SshResult(process.returncode or 0, stdout, stderr)
        if result.exit_status == 255:
            raise HostUnreachable(
                f"ssh {self.target.destination} (port {self.target.port}) failed: "
                f"{result.failure()}; check the address, that sshd runs there and that "
                "the key is accepted for that user"
            )
        if check and result.exit_status != 0:
            raise HostError(f"on {self.target.destination}: {result.failure()}")
        return result
