"""One certificate authority in a directory: ``ca-cert.pem`` (0644), ``ca-key.pem`` (0600)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from corral.errors import CorralError
from corral.pki import _x509
from corral.pki._files import CERT_MODE, KEY_MODE, private_dir, write_atomic

CA_VALIDITY_DAYS = 3650
LEAF_VALIDITY_DAYS = 365


@dataclass(frozen=True)
class Issued:
    """A freshly issued certificate and its private key, as PEM."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def cert(self) -> x509.Certificate:
        return _x509.load_cert(self.cert_pem)


class CertificateAuthority:
    """A CA on disk; :meth:`ensure` creates it the first time."""

    def __init__(
        self, directory: Path, common_name: str, organization: str, path_length: int = 0
    ) -> None:
        self.directory = directory
        self.common_name = common_name
        self.organization = organization
        self.path_length = path_length

    @property
    def cert_path(self) -> Path:
        return self.directory / "ca-cert.pem"

    @property
    def key_path(self) -> Path:
        return self.directory / "ca-key.pem"

    def exists(self) -> bool:
        return self.cert_path.exists()

    def ensure(self) -> bool:
        """Create the CA unless it exists; True if it was created now."""
        if self.cert_path.exists():
            if not self.key_path.exists():
                raise CorralError(
                    f"the CA certificate {self.cert_path} exists but its key {self.key_path} "
                    "is missing: restore the key from a backup (issuing with a new key would "
                    "make every host certificate unverifiable)"
                )
            return False
        private_dir(self.directory)
        key, cert = _x509.make_ca(
            _x509.subject(self.common_name, self.organization),
            CA_VALIDITY_DAYS,
            path_length=self.path_length,
        )
        write_atomic(self.key_path, _x509.key_pem(key), KEY_MODE)
        write_atomic(self.cert_path, _x509.cert_pem(cert), CERT_MODE)
        return True

    @property
    def cert_pem(self) -> bytes:
        return self.cert_path.read_bytes()

    @property
    def cert(self) -> x509.Certificate:
        return _x509.load_cert(self.cert_pem)

    def issue(
        self,
        common_name: str,
        profile: _x509.LeafProfile,
        *,
        dns_names: Sequence[str] = (),
        ips: Sequence[str] = (),
        days: int = LEAF_VALIDITY_DAYS,
    ) -> Issued:
        ca_key = _x509.load_key(self.key_path.read_bytes())
        key, cert = _x509.issue_leaf(
            ca_key,
            self.cert,
            _x509.subject(common_name),
            profile,
            days,
            dns_names=dns_names,
            ips=ips,
        )
        return Issued(_x509.cert_pem(cert), _x509.key_pem(key))

    def issue_sealed(
        self,
        common_name: str,
        profile: _x509.LeafProfile,
        *,
        dns_names: Sequence[str] = (),
        ips: Sequence[str] = (),
        days: int = LEAF_VALIDITY_DAYS,
    ) -> tuple[Issued, bytes, bytes]:
        """A leaf signed by a one-shot subordinate CA whose key is thrown away at once, so it
        never signs anything else; and a CRL from it revoking that very leaf. Returns the
        leaf, the subordinate's certificate and the CRL (PEM).

        What it is for: QEMU insists that a TLS server's own certificate chain to its
        ``ca-cert.pem``, and ignores a client certificate's purpose, so with a shared CA a
        host's VNC server certificate would open VNC servers as a client. With the
        subordinate and the CRL in the host's VNC directory, the host's own certificate is
        revoked for clients there (QEMU checks the CRL for peers, not for itself) and no other
        host's certificate chains to anything the host trusts."""
        root_key = _x509.load_key(self.key_path.read_bytes())
        sub_key, sub = _x509.make_ca(
            _x509.subject(f"{common_name} one-shot {self.common_name}", self.organization),
            days,
            issuer=(root_key, self.cert),
        )
        key, cert = _x509.issue_leaf(
            sub_key, sub, _x509.subject(common_name), profile, days, dns_names=dns_names, ips=ips
        )
        crl = _x509.make_crl(sub_key, sub, [cert])
        del sub_key
        issued = Issued(_x509.cert_pem(cert), _x509.key_pem(key))
        return issued, _x509.cert_pem(sub), _x509.crl_pem(crl)

    def write_issued(self, issued: Issued, cert_path: Path, key_path: Path) -> None:
        private_dir(cert_path.parent)
        write_atomic(key_path, issued.key_pem, KEY_MODE)
        write_atomic(cert_path, issued.cert_pem, CERT_MODE)
