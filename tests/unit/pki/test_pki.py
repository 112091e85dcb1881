"""The cluster PKI: CAs made once, chains that verify, one CA per trust relation, 0600 keys."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from corral.model.pki import CertPurpose
from corral.pki import ClusterPki
from corral.pki._x509 import load_cert


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> ClusterPki:
    cluster = ClusterPki(tmp_path_factory.mktemp("data"))
    cluster.ensure()
    return cluster


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ensure_is_idempotent_and_keys_are_private(tmp_path: Path) -> None:
    cluster = ClusterPki(tmp_path)
    done = cluster.ensure()
    assert len(done) == 7  # five CAs, two manager certificates
    before = {p: p.read_bytes() for p in cluster.root.rglob("*.pem")}
    assert cluster.ensure() == []
    assert {p: p.read_bytes() for p in cluster.root.rglob("*.pem")} == before
    keys = [p for p in before if "key" in p.name]
    assert len(keys) == 7
    assert all(_mode(p) == 0o600 for p in keys)
    assert all(_mode(p) == 0o700 for p in cluster.root.rglob("*") if p.is_dir())
    assert _mode(cluster.root) == 0o700
    assert sorted(p.name for p in cluster.libvirt_pkipath.iterdir()) == [
        "cacert.pem", "clientcert.pem", "clientkey.pem",
    ]  # fmt: skip


def test_one_distinct_ca_per_trust_relation(pki: ClusterPki) -> None:
    # libvirt, migration, VNC servers, the console proxy alone, and Corral's own HTTPS.
    subjects = {ca.cert.subject for ca in pki.authorities}
    keys = {ca.cert.public_key().public_numbers() for ca in pki.authorities}  # type: ignore[union-attr]
    assert len(subjects) == len(keys) == 5
    for ca in pki.authorities:
        constraints = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        # The VNC server CA signs one-shot issuers (see the revocation test below).
        assert constraints.ca and constraints.path_length == (ca is pki.vnc_server_ca)


def _verify_server(ca_pem: bytes, cert_pem: bytes, name: str) -> None:
    store = Store([load_cert(ca_pem)])
    verifier = PolicyBuilder().store(store).build_server_verifier(_subject(name))
    verifier.verify(load_cert(cert_pem), [])


def _subject(name: str) -> x509.DNSName | x509.IPAddress:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def test_host_certificates_chain_to_their_ca_only(pki: ClusterPki) -> None:
    certs = pki.issue_host("h2", "198.18.0.2", dns_names=["h2.example"])
    for cert_pem, ca in (
        (certs.libvirt_server.cert_pem, pki.libvirt_ca),
        (certs.migration_server.cert_pem, pki.migration_ca),
    ):
        for name in ("h2", "198.18.0.2", "h2.example"):
            _verify_server(ca.cert_pem, cert_pem, name)
        for other in pki.authorities:
            if other is not ca:
                with pytest.raises(VerificationError):
                    _verify_server(other.cert_pem, cert_pem, "h2")
        with pytest.raises(VerificationError):
            _verify_server(ca.cert_pem, cert_pem, "h3")
    # What the host trusts: its libvirt and migration peers' CAs, and for VNC clients only the
    # console client CA.
    assert certs.libvirt_ca == pki.libvirt_ca.cert_pem
    assert certs.migration_ca == pki.migration_ca.cert_pem
    assert certs.console_client_ca == pki.console_client_ca.cert_pem


def test_sans_and_usages(pki: ClusterPki) -> None:
    certs = pki.issue_host("h1", "h1.lab.example", ips=["198.18.0.1"])
    cert = certs.libvirt_server.cert
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["h1.lab.example", "h1"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("198.18.0.1")]
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.key_encipherment
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    client = certs.migration_client.cert
    eku = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    lifetime = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(days=364) < lifetime <= datetime.timedelta(days=366)


def test_expiry_of_host_and_manager_certificates(tmp_path: Path, pki: ClusterPki) -> None:
    certs = pki.issue_host("h5", "198.18.0.5")
    pki.save_host_certs("h5", certs)
    infos = pki.host_certs("h5")
    assert [i.purpose for i in infos] == [
        CertPurpose.LIBVIRT_SERVER, CertPurpose.LIBVIRT_PEER_CLIENT,
        CertPurpose.MIGRATION_SERVER, CertPurpose.MIGRATION_CLIENT, CertPurpose.VNC_SERVER,
    ]  # fmt: skip
    subjects = {i.purpose: i.subject for i in infos}
    assert subjects.pop(CertPurpose.LIBVIRT_PEER_CLIENT) == "corral-host-h5"
    assert set(subjects.values()) == {"h5"}
    assert all(364 * 86400 < i.expires_in_s <= 366 * 86400 for i in infos)
    assert not list(pki.host_dir("h5").glob("*key*"))  # host keys are never kept
    pki.forget_host("h5")
    assert pki.host_certs("h5") == []
    manager = {(i.purpose, i.subject) for i in pki.manager_certs()}
    assert (CertPurpose.LIBVIRT_CLIENT, "corral-manager") in manager
    assert (CertPurpose.CONSOLE_CLIENT, "corral-console-proxy") in manager
    assert sum(1 for p, _ in manager if p is CertPurpose.CA) == 5


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext, hostname: str) -> None:
    """A TLS handshake between two contexts in memory (OpenSSL on both sides)."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    cli = client.wrap_bio(c_in, c_out, server_hostname=hostname)
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(20):
        for key, end, out, peer_in in (("c", cli, c_out, s_in), ("s", srv, s_out, c_in)):
            if not done[key]:
                try:
                    end.do_handshake()
                    done[key] = True
                except ssl.SSLWantReadError:
                    pass
            peer_in.write(out.read())
        if all(done.values()):
            break
    # TLS 1.3: the server judges the client certificate after its own Finished; data flows
    # only once it accepted it.
    try:
        cli.write(b"x")
        s_in.write(c_out.read())
        srv.read(1)
    except ssl.SSLWantReadError:
        pass


def _server_context(
    tmp_path: Path, cert_pem: bytes, key_pem: bytes, ca_pem: bytes
) -> ssl.SSLContext:
    for name, data in (("c.pem", cert_pem), ("k.pem", key_pem), ("ca.pem", ca_pem)):
        (tmp_path / name).write_bytes(data)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    ctx.load_verify_locations(tmp_path / "ca.pem")
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def test_console_context_opens_a_host_vnc_server_and_nothing_else_does(
    tmp_path: Path, pki: ClusterPki
) -> None:
    certs = pki.issue_host("h3", "198.18.0.3")
    # A host's VNC server as QEMU is configured: its certificate with the chain up to the VNC
    # server CA; clients from the console CA or (revoked, below) its own one-shot issuer.
    vnc = _server_context(
        tmp_path,
        certs.vnc_server.cert_pem + certs.vnc_issuer,
        certs.vnc_server.key_pem,
        certs.console_client_ca + certs.vnc_issuer,
    )
    _handshake(vnc, pki.console_client_context(), "198.18.0.3")
    # Another host's VNC server certificate as a client certificate: refused.
    other = pki.issue_host("h4", "198.18.0.4")
    (tmp_path / "ca2.pem").write_bytes(pki.vnc_server_ca.cert_pem)
    impostor = ssl.create_default_context(cafile=str(tmp_path / "ca2.pem"))
    (tmp_path / "vc.pem").write_bytes(other.vnc_server.cert_pem + other.vnc_issuer)
    (tmp_path / "vk.pem").write_bytes(other.vnc_server.key_pem)
    impostor.load_cert_chain(tmp_path / "vc.pem", tmp_path / "vk.pem")
    with pytest.raises(ssl.SSLError):
        _handshake(vnc, impostor, "198.18.0.3")
    # The console context refuses a server whose certificate another CA signed.
    libvirtd = _server_context(
        tmp_path, certs.libvirt_server.cert_pem, certs.libvirt_server.key_pem, certs.libvirt_ca
    )
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(libvirtd, pki.console_client_context(), "198.18.0.3")


def test_a_hosts_own_vnc_certificate_is_revoked_by_its_one_shot_issuer(pki: ClusterPki) -> None:
    """QEMU needs its own certificate to chain to its ca-cert.pem; the one-shot issuer's CRL
    (checked by QEMU for clients only) revokes exactly that certificate."""
    certs = pki.issue_host("h6", "198.18.0.6")
    leaf, issuer = certs.vnc_server.cert, load_cert(certs.vnc_issuer)
    assert leaf.issuer == issuer.subject
    constraints = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0
    assert issuer.issuer == pki.vnc_server_ca.cert.subject
    crl = x509.load_pem_x509_crl(certs.vnc_crl)
    assert crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    assert [r.serial_number for r in crl] == [leaf.serial_number]
    # Each host gets its own issuer: nothing one host trusts signed another host's certificate.
    assert load_cert(pki.issue_host("h6", "198.18.0.6").vnc_issuer).subject == issuer.subject
    assert pki.issue_host("h7", "198.18.0.7").vnc_issuer != certs.vnc_issuer


def test_the_longest_host_name_gets_certificates(pki: ClusterPki) -> None:
    # A 63-character name (the longest a host may have) with a 64-character DNS address: the
    # one-shot VNC issuer's common name would pass X.509's 64-character limit (a fuzzer's 500).
    name = "h" + "0" * 62
    certs = pki.issue_host(name, "a" * 63 + ".example")
    issuer = load_cert(certs.vnc_issuer)
    cn = issuer.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
    assert len(str(cn)) <= 64
    sans = load_cert(certs.vnc_server.cert_pem).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert name in sans.value.get_values_for_type(x509.DNSName)
