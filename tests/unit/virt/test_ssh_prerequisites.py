"""The ssh transport's prerequisites: its probe runs the ssh command libvirt runs, and what
ssh says becomes the cause with what to do. The "source host" is this machine, the ssh client
a script that says what a real one says."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import libvirt
import pytest

from corral.model.migration import MigrationRequest
from corral.virt.transports import CommandResult, MigrationEndpoint, SshTransport
from corral.virt.transports.ssh import ssh_login

H1 = MigrationEndpoint(
    "h1", "198.18.0.1", "qemu+tls://198.18.0.1/system", True, "root@198.18.0.1", 22
)
H2 = MigrationEndpoint(
    "h2", "198.18.0.2", "qemu+tls://198.18.0.2/system", True, "root@198.18.0.2", 2222
)


def fake_ssh(tmp_path: Path, says: str, status: int) -> Path:
    """An ssh client that writes its arguments (one a line) to ``args``, says ``says`` on
    standard error and exits with ``status``."""
    script = tmp_path / "ssh-client"
    script.write_text(
        "#!/bin/sh\n"
        f'for a in "$@"; do printf "%s\\n" "$a"; done > {tmp_path / "args"}\n'
        f"printf '%s\\n' '{says}' >&2\n"
        f"exit {status}\n"
    )
    script.chmod(0o755)
    return script


async def run_here(argv: Sequence[str]) -> CommandResult:
    """Runs the probe on this machine, as Corral runs it on the source host."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    return CommandResult(process.returncode or 0, output.decode())


def test_the_probe_runs_the_ssh_command_libvirt_runs(tmp_path: Path) -> None:
    script = fake_ssh(tmp_path, "Host key verification failed.", 255)
    transport = SshTransport({"command": str(script), "keyfile": "/etc/corral/k"})
    request = MigrationRequest(to="h2", transport="ssh")
    uri = transport.plan(H1, H2, request).destination_uri
    with pytest.raises(libvirt.libvirtError, match="Host key verification failed"):
        libvirt.open(uri)  # libvirt's own qemu+ssh client, which runs the script
    by_libvirt = (tmp_path / "args").read_text().splitlines()
    login = ssh_login(H2)
    assert login is not None
    probe = transport.probe_argv(login)
    assert probe[0] == str(script)
    timeout = probe.index("ConnectTimeout=10")
    without_timeout = probe[1 : timeout - 1] + probe[timeout + 1 :]
    # The same options and destination; only the remote command differs.
    assert without_timeout[:-1] == by_libvirt[:-1]
    assert without_timeout[-3:-1] == ["--", "198.18.0.2"]
    assert "virt-ssh-helper" in by_libvirt[-1] and probe[-1] == "true"


async def test_an_unknown_host_key_is_named_with_the_fix(tmp_path: Path) -> None:
    script = fake_ssh(tmp_path, "Host key verification failed.", 255)
    [problem] = await SshTransport({"command": str(script)}).prerequisites(H1, H2, run_here)
    assert problem.startswith("host key verification failed for h2 (198.18.0.2 port 2222): ")
    assert "h1's ssh does not know h2's host key" in problem
    assert "on h1: `ssh-keyscan -p 2222 198.18.0.2 >> ~/.ssh/known_hosts`" in problem
    changed = fake_ssh(
        tmp_path, "@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@ Host key "
        "verification failed.", 255,
    )  # fmt: skip
    [problem] = await SshTransport({"command": str(changed)}).prerequisites(H1, H2, run_here)
    assert "is not the one h1 recorded (REMOTE HOST IDENTIFICATION HAS CHANGED)" in problem
    assert "`ssh-keygen -R [198.18.0.2]:2222`, then `ssh-keyscan -p 2222 198.18.0.2`" in problem


async def test_a_refused_key_and_an_absent_sshd(tmp_path: Path) -> None:
    denied = fake_ssh(tmp_path, "root@198.18.0.2: Permission denied (publickey).", 255)
    [problem] = await SshTransport({"command": str(denied)}).prerequisites(H1, H2, run_here)
    assert "h2's sshd refused the key of root's ssh on h1 for user root" in problem
    refused = fake_ssh(
        tmp_path, "ssh: connect to host 198.18.0.2 port 2222: Connection refused", 255
    )
    [problem] = await SshTransport({"command": str(refused)}).prerequisites(H1, H2, run_here)
    assert "nothing accepts SSH on h2 (198.18.0.2 port 2222; Connection refused)" in problem


async def test_a_missing_command_and_an_unknown_failure(tmp_path: Path) -> None:
    missing = SshTransport({"command": str(tmp_path / "no-such-ssh")})
    run = run_here

    async def through_a_shell(argv: Sequence[str]) -> CommandResult:
        # A shell reports a missing command with 127, as on the source host.
        return await run(["sh", "-c", '"$0" "$@"', *argv])

    [problem] = await missing.prerequisites(H1, H2, through_a_shell)
    assert f"the ssh transport's command {tmp_path / 'no-such-ssh'} cannot run on h1" in problem
    odd = fake_ssh(tmp_path, "something odd", 255)
    [problem] = await SshTransport({"command": str(odd)}).prerequisites(H1, H2, run_here)
    assert "could not log in to h2 as root (198.18.0.2 port 2222, exit status 255)" in problem
    assert "something odd" not in problem  # ssh's output is recognised, never passed on


async def test_a_working_login_and_a_destination_without_address(tmp_path: Path) -> None:
    fine = SshTransport({"command": str(fake_ssh(tmp_path, "", 0))})
    assert await fine.prerequisites(H1, H2, run_here) == []
    local = MigrationEndpoint("local", None, "qemu:///system")
    assert await fine.prerequisites(H1, local, run_here) == []  # check() says why
