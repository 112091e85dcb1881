"""https and wss: --ca-cert trusts Corral's CA, --insecure skips the check, else a clear error."""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.unit.cli.canned_api import CannedState, build_app, vm_info
from tests.unit.cli.conftest import cli_command

TIMEOUT_S = 15


def _write_ca_and_server_cert(directory: Path) -> tuple[Path, Path, Path]:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture(scope="module")
def tls_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, CannedState]]:
    directory = tmp_path_factory.mktemp("tls")
    ca, cert, key = _write_ca_and_server_cert(directory)
    state = CannedState()
    state.vms = {"web1": vm_info("web1")}
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        build_app(state),
        log_level="critical",  # the refused handshakes below are expected
        ws="websockets-sansio",
        lifespan="off",
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "TLS API did not start"
        time.sleep(0.01)
    yield f"https://127.0.0.1:{port}", ca, state
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def _cli(url: str, state: CannedState, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "CORRAL_URL": url, "CORRAL_TOKEN": state.token}
    env.pop("CORRAL_CONFIG_DIR", None)
    return subprocess.run(
        cli_command(*args), env=env, capture_output=True, timeout=TIMEOUT_S, check=False
    )


def test_untrusted_certificate_suggests_ca_cert(tls_api: tuple[str, Path, CannedState]) -> None:
    url, _, state = tls_api
    done = _cli(url, state, "vm", "list")
    assert done.returncode == 1
    assert f"error: the TLS certificate of {url} is not trusted".encode() in done.stderr
    assert b"--ca-cert" in done.stderr


def test_ca_cert_and_insecure_work(tls_api: tuple[str, Path, CannedState]) -> None:
    url, ca, state = tls_api
    trusted = _cli(url, state, "--ca-cert", str(ca), "vm", "list")
    assert trusted.returncode == 0, trusted.stderr
    assert b"web1" in trusted.stdout
    insecure = _cli(url, state, "--insecure", "vm", "list")
    assert insecure.returncode == 0, insecure.stderr


def test_console_over_wss_uses_the_same_trust(tls_api: tuple[str, Path, CannedState]) -> None:
    url, ca, state = tls_api
    env = {**os.environ, "CORRAL_URL": url, "CORRAL_TOKEN": state.token}
    done = subprocess.run(
        cli_command("--ca-cert", str(ca), "vm", "console", "web1"),
        input=b"hi\x1d",
        env=env,
        capture_output=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + TIMEOUT_S
    while state.serial_received != b"hi":
        assert time.monotonic() < deadline, state.serial_received
        time.sleep(0.02)
    refused = subprocess.run(
        cli_command("vm", "console", "web1"),
        input=b"",
        env=env,
        capture_output=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert refused.returncode == 1
    assert f"error: the TLS certificate of {url} is not trusted".encode() in refused.stderr
