"""Keys and certificates with ``cryptography``: pure functions, no files.

Keys are ECDSA P-256: GnuTLS (libvirt, QEMU) and OpenSSL (Python's ``ssl``) accept them, and
generating one takes a millisecond, so enrolling a host or rotating its certificates stays quick.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey

#: Backdating covers clocks of hosts a little behind the manager's.
_BACKDATE = datetime.timedelta(minutes=10)


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def new_key() -> PrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def crl_pem(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.PEM)


def load_key(pem: bytes) -> PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("not an EC private key")
    return key


def load_cert(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


#: X.509 (RFC 5280 ub-common-name) allows at most 64 characters in a common name.
MAX_COMMON_NAME = 64


def subject(common_name: str, organization: str | None = None) -> x509.Name:
    """A subject; a longer common name is cut to 64 characters (the SANs, not the CN, carry
    the names that are checked)."""
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name[:MAX_COMMON_NAME])]
    if organization:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


@dataclass(frozen=True)
class LeafProfile:
    """What a leaf certificate may be used for. ``server`` and ``client`` set the extended key
    usages (TLS Web Server / Client Authentication); libvirt refuses a certificate whose
    critical key usage lacks digital signature or key encipherment, so both are always set."""

    server: bool
    client: bool


def _base(
    name: x509.Name,
    issuer: x509.Name,
    public: ec.EllipticCurvePublicKey,
    days: int,
    cap: datetime.datetime | None = None,
) -> x509.CertificateBuilder:
    """Common fields; never valid beyond ``cap`` (the issuer's own expiry)."""
    now = utcnow()
    until = now + datetime.timedelta(days=days)
    if cap is not None:
        until = min(until, cap)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(until)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )


def make_ca(
    name: x509.Name,
    days: int,
    *,
    path_length: int = 0,
    issuer: tuple[PrivateKey, x509.Certificate] | None = None,
) -> tuple[PrivateKey, x509.Certificate]:
    """A CA: self-signed, or signed by ``issuer`` (a subordinate); ``path_length`` 0 signs
    end-entity certificates only."""
    key = new_key()
    signer_key, issuer_name = (issuer[0], issuer[1].subject) if issuer else (key, name)
    cap = issuer[1].not_valid_after_utc if issuer else None
    builder = _base(name, issuer_name, key.public_key(), days, cap)
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()),
            critical=False,
        )
    cert = (
        builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=path_length), critical=True
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(signer_key, hashes.SHA256())
    )
    return key, cert


def make_crl(
    ca_key: PrivateKey, ca_cert: x509.Certificate, revoked: list[x509.Certificate]
) -> x509.CertificateRevocationList:
    """A CRL from ``ca_cert`` revoking ``revoked``, valid as long as the CA."""
    now = utcnow()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - _BACKDATE)
        .next_update(ca_cert.not_valid_after_utc)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(x509.CRLNumber(1), critical=False)
    )
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(now - _BACKDATE)
            .build()
        )
    return builder.sign(ca_key, hashes.SHA256())


def _general_names(dns_names: Sequence[str], ips: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for dns in dict.fromkeys(dns_names):
        names.append(x509.DNSName(dns))
    for ip in dict.fromkeys(ips):
        names.append(x509.IPAddress(ipaddress.ip_address(ip)))
    return names


def issue_leaf(
    ca_key: PrivateKey,
    ca_cert: x509.Certificate,
    name: x509.Name,
    profile: LeafProfile,
    days: int,
    *,
    dns_names: Sequence[str] = (),
    ips: Sequence[str] = (),
) -> tuple[PrivateKey, x509.Certificate]:
    """A new key and a certificate for it, signed by the CA, never valid beyond the CA."""
    key = new_key()
    usages = []
    if profile.server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if profile.client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = (
        _base(name, ca_cert.subject, key.public_key(), days, ca_cert.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    general = _general_names(dns_names, ips)
    if general:
        builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def common_name(cert: x509.Certificate) -> str:
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else cert.subject.rfc4514_string()


def subject_alt_names(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    """(DNS names, IP addresses) a certificate names."""
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    return (
        set(sans.get_values_for_type(x509.DNSName)),
        {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)},
    )
