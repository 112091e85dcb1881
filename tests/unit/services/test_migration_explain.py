"""Failure explanations: the cause first, the evidence quoted; the source log's error lines."""

from __future__ import annotations

from datetime import UTC, datetime

from corral.services.migrations.explain import FailureEvidence, explain
from corral.services.migrations.host_logs import error_lines

BASE = FailureEvidence(
    vm="web1",
    source="h1",
    destination="h2",
    transport="tls",
    encrypted=True,
    libvirt_message="",
)


def _with(**fields: object) -> str:
    return explain(FailureEvidence(**{**BASE.__dict__, **fields}))  # type: ignore[arg-type]


def test_a_corrupted_tls_stream_is_named_with_the_source_qemus_words() -> None:
    text = _with(
        libvirt_message=(
            "internal error: qemu unexpectedly closed the monitor: error while loading state "
            "section id 3(ram)\nload of migration failed: Input/output error"
        ),
        qemu_detail="Cannot write to TLS channel: Input/output error",
    )
    assert text.startswith("migration of VM web1 from h1 to h2 over tls failed: the encrypted ")
    assert "changed or cut in transit" in text
    assert "the VM keeps running on h1" in text
    assert "QEMU on h1: Cannot write to TLS channel: Input/output error" in text
    assert "\n" not in text


def test_a_vague_socket_error_becomes_the_lost_destination() -> None:
    text = _with(
        libvirt_message="internal error: client socket is closed",
        log_lines=("operation failed: Lost connection to destination host",),
        destination_alive=False,
    )
    assert "h1 lost its connection to the libvirt daemon of h2" in text
    assert "h1's libvirtd log: operation failed: Lost connection to destination host" in text


def test_a_lost_destination_explains_a_broken_tls_stream_too() -> None:
    """The destination's QEMU went away with its libvirtd: TLS breaks as a consequence."""
    text = _with(
        libvirt_message="internal error: client socket is closed",
        qemu_detail="Cannot write to TLS channel: Input/output error",
        log_lines=("operation failed: Lost connection to destination host",),
    )
    assert "h1 lost its connection to the libvirt daemon of h2" in text


def test_hosts_that_force_tls_say_how_to_allow_plain_streams() -> None:
    text = _with(
        transport="insecure",
        encrypted=False,
        libvirt_message="Requested operation is not valid: this libvirtd instance allows "
        "migration only with VIR_MIGRATE_TLS flag",
    )
    assert "corral host rotate-certs h1" in text and "corral host rotate-certs h2" in text


def test_a_foreign_certificate() -> None:
    text = _with(qemu_detail="The certificate hasn't got a known issuer")
    assert "certificate was refused (The certificate hasn't got a known issuer)" in text
    assert "Corral's migration CA" in text


def test_anything_else_keeps_libvirts_first_line() -> None:
    text = _with(libvirt_message="something odd\nmore")
    assert "failed: something odd; the VM keeps running on h1 (libvirt: something odd more)" in text


LOG = """\
2026-11-28 04:51:20.090+0000: 470: error : qemuDomainGetJobStatsInternal:12449 : Operation not supported: migration statistics are available only on the source host
2026-11-28 04:51:30.000+0000: 472: error : virNetSocketReadWire:1778 : too early
2026-11-28 04:51:36.079+0000: 469: error : virNetSocketReadWire:1778 : Cannot recv data: Input/output error
2026-11-28 04:51:36.079+0000: 472: error : qemuMigrationAnyCompleted:1946 : operation failed: Lost connection to destination host
2026-11-28 04:51:36.097+0000: 472: error : virNetClientSendInternal:2152 : internal error: client socket is closed
2026-11-28 04:51:36.103+0000: 472: error : virNetClientSendInternal:2152 : internal error: client socket is closed
2026-11-28 04:51:37.000+0000: 472: info : something : not an error
"""  # noqa: E501


def test_error_lines_since_the_migration_started() -> None:
    since = datetime(2026, 11, 28, 4, 51, 31, tzinfo=UTC)
    assert error_lines(LOG, since) == (
        "Cannot recv data: Input/output error",
        "operation failed: Lost connection to destination host",
        "internal error: client socket is closed",
    )
    assert error_lines(LOG, since, limit=1) == ("internal error: client socket is closed",)
    assert error_lines("", since) == ()


#: What libvirt answers when the source's ssh does not know the destination's host key
#: (peer-to-peer: the source's libvirtd opens qemu+ssh:// and quotes ssh's stderr).
HOST_KEY = (
    "operation failed: Failed to connect to remote libvirt URI "
    "qemu+ssh://root@198.18.0.2/system?no_tty=1: Cannot recv data: Host key verification "
    "failed.: Connection reset by peer"
)


def test_an_unknown_ssh_host_key_is_named_and_no_certificate_is_blamed() -> None:
    text = _with(transport="ssh", libvirt_message=HOST_KEY)
    assert "over ssh failed: h1 could not reach h2 over SSH: host key verification failed " in text
    assert "host key verification failed for h2 (198.18.0.2): " in text
    assert "h1's ssh does not know h2's host key" in text
    assert "`ssh-keyscan 198.18.0.2 >> ~/.ssh/known_hosts`" in text
    assert "certificate" not in text and "rotate-certs" not in text
    assert f"libvirt: {HOST_KEY}" in text  # the evidence, quoted


def test_a_changed_ssh_host_key_is_not_mistaken_for_an_unknown_one() -> None:
    said = "Cannot recv data: @@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@ Host key "
    text = _with(transport="ssh", libvirt_message=said + "verification failed.")
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in text
    assert "`ssh-keygen -R ADDRESS`, then `ssh-keyscan ADDRESS`" in text  # no URI quoted
    assert "rotate-certs" not in text


def test_a_refused_ssh_key_says_whose_key_goes_where() -> None:
    said = (
        "Cannot recv data: root@198.18.0.2: Permission denied (publickey).: Connection reset "
        "by peer"
    )
    text = _with(transport="ssh", libvirt_message=said)
    assert "h2's sshd refused the key of root's ssh on h1 for user root" in text
    assert "authorized_keys on h2" in text


def test_a_refused_tls_connection_is_not_taken_for_ssh() -> None:
    said = "unable to connect to server at '198.18.0.2:16514': Connection refused"
    text = _with(libvirt_message=said)
    assert "SSH" not in text and "failed: unable to connect to server" in text
