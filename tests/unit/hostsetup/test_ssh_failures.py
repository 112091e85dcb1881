"""What ssh and the host say is never repeated: failures are Corral's own sentences (issue 13:
error details never echo what a remote end or a file said)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from corral.errors import HostError, HostUnreachable
from corral.hostsetup.layout import Payload
from corral.hostsetup.remote import RemoteInstaller
from corral.hostsetup.ssh import SshResult, SshRunner, SshTarget

CANARY = "canary-4f1d2e"


@asynccontextmanager
async def far_end(greeting: bytes) -> AsyncIterator[int]:
    """A TCP server on loopback that greets every client with ``greeting`` and hangs up."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(greeting)
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("greeting", "sentence"),
    [
        (f"SSH-9.9-{CANARY}\r\n".encode(), "does not speak SSH"),
        (f"HTTP/1.1 400 {CANARY}\r\n\r\n".encode(), "closed the connection"),
    ],
)
async def test_what_the_far_end_says_is_not_repeated(
    tmp_path: Path, greeting: bytes, sentence: str
) -> None:
    async with far_end(greeting) as port:
        runner = SshRunner(SshTarget("root@127.0.0.1", port), tmp_path / "known_hosts", 5)
        with pytest.raises(HostUnreachable) as caught:
            await runner.run("true", seconds=20)
    assert sentence in caught.value.message
    assert CANARY not in caught.value.message


async def test_a_refused_connection_says_so(tmp_path: Path) -> None:
    runner = SshRunner(SshTarget("root@127.0.0.1", _closed_port()), tmp_path / "kh", 5)
    with pytest.raises(HostUnreachable) as caught:
        await runner.run("true", seconds=20)
    assert "the connection was refused" in caught.value.message


async def test_a_key_file_is_not_quoted(tmp_path: Path) -> None:
    key = tmp_path / "shadow"
    key.write_text(f"root:{CANARY}:19000:0:99999:7:::\n")
    key.chmod(0o600)
    target = SshTarget("root@127.0.0.1", _closed_port(), str(key))
    with pytest.raises(HostUnreachable) as caught:
        await SshRunner(target, tmp_path / "kh", 5).run("true", seconds=20)
    assert CANARY not in caught.value.message


def test_a_failed_commands_output_is_not_repeated() -> None:
    failed = SshResult(2, CANARY.encode(), f"sh: {CANARY}: not found\n".encode())
    assert failed.failure() == "the command on the host failed with exit status 2"
    unknown = SshResult(255, b"", f"Received disconnect: {CANARY}\n".encode())
    assert CANARY not in unknown.failure()


class _Scripted(SshRunner):
    """The host's answers, scripted: what is under test is what the installer repeats."""

    def __init__(self, stdout: str) -> None:
        super().__init__(SshTarget("root@192.0.2.1"), Path("/nonexistent/kh"))
        self.stdout = stdout

    async def run(
        self, command: str, *, input: bytes = b"", seconds: float = 60, check: bool = True
    ) -> SshResult:
        return SshResult(0, self.stdout.encode(), b"")


@pytest.mark.parametrize(
    ("answer", "state", "message"),
    [
        (
            "rolled-back\ninstalling the files failed\n",
            "rolled-back",
            "installing the files failed",
        ),
        (f"rolled-back\n{CANARY}\n", "rolled-back", "the installer's own words are not shown"),
        ("failed\nno confirmation from the manager within 60 s\n", "failed", None),
        (f"{CANARY}\n", "lost", "the installer's status cannot be read"),
        ("rolled-back\nTLS check failed\n", "rolled-back", "the installer's own words"),
    ],
)
async def test_the_installer_repeats_only_its_own_sentences(
    answer: str, state: str, message: str | None
) -> None:
    outcome = await RemoteInstaller(_Scripted(answer)).wait("/x", {"rolled-back", "failed"})
    assert outcome.state == state
    assert CANARY not in outcome.message
    if message is not None:
        assert message in outcome.message


async def test_the_reason_corral_gave_is_repeated() -> None:
    installer = RemoteInstaller(_Scripted("rolled-back\nTLS check failed\n"))
    outcome = await installer.wait("/x", {"rolled-back"}, reason="TLS check failed")
    assert outcome.message == "TLS check failed"


async def test_a_damaged_upload_says_so() -> None:
    class Damaged(_Scripted):
        async def run(
            self, command: str, *, input: bytes = b"", seconds: float = 60, check: bool = True
        ) -> SshResult:
            return SshResult(3, b"", f"{CANARY}\n".encode())

    with pytest.raises(HostError) as caught:
        await RemoteInstaller(Damaged("")).stage_and_activate(Payload(), 60)
    assert "the upload arrived damaged" in caught.value.message
