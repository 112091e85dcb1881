"""https and wss: --ca-cert trusts Corral's CA, --insecure skips the check, else a clear error.

https runs against the real app; wss against the canned API (its answers checked against
/openapi.json): the test driver has no serial consoles."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.unit.cli._real import ADMIN, PASSWORD, real_corral, serve
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
    with serve(
        build_app(state),
        lifespan="off",
        log_level="critical",  # the refused handshakes below are expected
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
    ) as url:
        yield url, ca, state


@pytest.fixture(scope="module")
def real_tls_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, str]]:
    """(URL, CA file, admin token) of the real app serving https."""
    directory = tmp_path_factory.mktemp("real-tls")
    ca, cert, key = _write_ca_and_server_cert(directory)
    with real_corral(
        directory / "data",
        log_level="critical",  # the refused handshakes below are expected
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
    ) as (url, _services, _recorder):
        trust = ssl.create_default_context(cafile=ca)
        login = httpx.post(url + "/api/v1/auth/login", verify=trust, timeout=30,
                           json={"username": ADMIN, "password": PASSWORD})  # fmt: skip
        assert login.status_code == 201, login.text
        yield url, ca, login.json()["secret"]


def _cli(url: str, token: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "CORRAL_URL": url, "CORRAL_TOKEN": token}
    env.pop("CORRAL_CONFIG_DIR", None)
    return subprocess.run(
        cli_command(*args), env=env, capture_output=True, timeout=TIMEOUT_S, check=False
    )


def test_untrusted_certificate_suggests_ca_cert(real_tls_api: tuple[str, Path, str]) -> None:
    url, _, token = real_tls_api
    done = _cli(url, token, "vm", "list")
    assert done.returncode == 1
    assert f"error: the TLS certificate of {url} is not trusted".encode() in done.stderr
    assert b"--ca-cert" in done.stderr


def test_ca_cert_and_insecure_work(real_tls_api: tuple[str, Path, str]) -> None:
    url, ca, token = real_tls_api
    trusted = _cli(url, token, "--ca-cert", str(ca), "host", "list")
    assert trusted.returncode == 0, trusted.stderr
    assert any(line.split()[:2] == [b"test", b"connected"] for line in trusted.stdout.splitlines())
    insecure = _cli(url, token, "--insecure", "host", "list")
    assert insecure.returncode == 0, insecure.stderr
    assert insecure.stdout == trusted.stdout


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
