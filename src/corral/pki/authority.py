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

    def __init__(self, directory: Path, common_name: str, organization: str) -> None:
        self.directory = directory
        self.common_name = common_name
        self.organization = organization

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
            _x509.subject(self.common_name, self.organization), CA_VALIDITY_DAYS
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

    def write_issued(self, issued: Issued, cert_path: Path, key_path: Path) -> None:
        private_dir(cert_path.parent)
        write_atomic(key_path, issued.key_pem, KEY_MODE)
        write_atomic(cert_path, issued.cert_pem, CERT_MODE)
