"""Plain HTTP on loopback only; HTTPS with Corral's own certificate or the operator's beyond."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from corral.config import Settings
from corral.errors import InvalidRequest
from corral.pki import ClusterPki
from corral.pki._x509 import subject_alt_names
from corral.serving import is_loopback, plan_serving


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(data_dir=tmp_path, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("198.18.0.1", False), ("corral.example", False)],
)  # fmt: skip
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_loopback_is_plain_http(tmp_path: Path) -> None:
    serving = plan_serving(_settings(tmp_path))
    assert serving.scheme == "http" and serving.cert is None
    assert serving.local_url(_settings(tmp_path)) == "http://127.0.0.1:8080"
    assert not (tmp_path / "pki" / "web-ca").exists()


def test_beyond_loopback_is_https_with_corrals_own_certificate(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path, listen_host="0.0.0.0", public_names=["corral.example", "198.18.0.9"]
    )
    serving = plan_serving(settings)
    assert serving.scheme == "https" and serving.cert and serving.key and serving.ca_cert
    assert serving.local_url(settings) == "https://127.0.0.1:8080"
    cert = x509.load_pem_x509_certificate(serving.cert.read_bytes())
    dns, ips = subject_alt_names(cert)
    assert {"localhost", "corral.example"} <= dns and {"127.0.0.1", "198.18.0.9"} <= ips
    ca = x509.load_pem_x509_certificate(serving.ca_cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    assert serving.key.stat().st_mode & 0o077 == 0
    # Started again with the same names: the same certificate; with other names: a new one.
    assert plan_serving(settings).cert.read_bytes() == serving.cert.read_bytes()  # type: ignore[union-attr]
    other = _settings(tmp_path, listen_host="0.0.0.0", public_names=["other.example"])
    renewed = x509.load_pem_x509_certificate(plan_serving(other).cert.read_bytes())  # type: ignore[union-attr]
    assert "other.example" in subject_alt_names(renewed)[0]
    # The web CA signs nothing but Corral's HTTPS: it is none of the cluster's other CAs.
    pki = ClusterPki(tmp_path)
    assert pki.web_ca.cert.subject not in {c.cert.subject for c in pki.authorities[:4]}


def test_the_operators_certificate_wins_even_on_loopback(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("y")
    serving = plan_serving(_settings(tmp_path, tls_cert=cert, tls_key=key))
    assert (serving.scheme, serving.cert, serving.key, serving.ca_cert) == (
        "https",
        cert,
        key,
        None,
    )


def test_half_a_tls_configuration_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="both tls_cert and tls_key"):
        plan_serving(_settings(tmp_path, tls_cert=tmp_path / "c.pem"))
    with pytest.raises(InvalidRequest, match="does not exist"):
        plan_serving(_settings(tmp_path, tls_cert=tmp_path / "c.pem", tls_key=tmp_path / "k.pem"))
