"""The cluster's PKI under ``DATA_DIR/pki/``: one CA per trust relation.

==========================  =========================================================
``libvirt-ca/``             signs hosts' libvirtd server certificates and Corral's
                            libvirt client certificate
``migration-ca/``           signs each host's QEMU migration server and client certificates
``vnc-server-ca/``          signs hosts' QEMU VNC server certificates; Corral's console proxy
                            trusts it
``console-client-ca/``      signs *only* Corral's console proxy client certificate: it is the
                            CA hosts' VNC servers trust for clients. QEMU ignores a client
                            certificate's purpose, so with one CA for both a host's own VNC
                            server certificate would open every VM's screen.
``manager/libvirt/``        Corral's libvirt client certificate, laid out as libvirt's
                            ``?pkipath=`` wants it (``cacert.pem clientcert.pem clientkey.pem``)
``manager/console/``        the console proxy's certificate and the VNC server CA
``hosts/NAME/``             the certificates (never the keys) issued to each host, for expiry

Each host gets a libvirt *client* certificate too (``CN=corral-host-NAME``, libvirt CA): in a
peer-to-peer migration the source host's libvirtd opens ``qemu+tls://DESTINATION/system`` with
it, and hosts' ``tls_allowed_dn_list`` admits ``CN=corral-manager`` and ``CN=corral-host-*``.
==========================  =========================================================

Keys are 0600 in 0700 directories. :meth:`ClusterPki.ensure` creates whatever is missing and
renews Corral's own certificates in their last 30 days; it is idempotent.
"""

from __future__ import annotations

import datetime
import shutil
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from corral.model.pki import CertInfo, CertPurpose
from corral.pki import _x509
from corral.pki._files import CERT_MODE, locked, private_dir, write_atomic
from corral.pki.authority import CertificateAuthority, Issued

ORGANIZATION = "Corral"
#: The subject of Corral's libvirt client certificate; hosts' ``tls_allowed_dn_list`` allows
#: only this name (one attribute, so GnuTLS's DN order cannot matter).
LIBVIRT_CLIENT_CN = "corral-manager"
WEB_SERVER_CN = "corral-web"
#: Hosts' own libvirt client certificates (``CN=corral-host-NAME``): peer-to-peer migration,
#: where the source host's libvirtd connects to the destination's. Hosts allow
#: ``CN=corral-host-*``; only Corral's libvirt CA issues names of that form.
HOST_CLIENT_CN_PREFIX = "corral-host-"
CONSOLE_CLIENT_CN = "corral-console-proxy"
RENEW_BEFORE = datetime.timedelta(days=30)

SERVER = _x509.LeafProfile(server=True, client=False)
CLIENT = _x509.LeafProfile(server=False, client=True)


@dataclass(frozen=True)
class HostCertificates:
    """Everything one host needs, freshly issued (keys exist only here and on the host)."""

    libvirt_ca: bytes
    libvirt_server: Issued
    #: The host's libvirtd as a client of other hosts' (peer-to-peer migration).
    libvirt_client: Issued
    migration_ca: bytes
    migration_server: Issued
    migration_client: Issued
    #: The CA the host's VNC servers trust for *clients*: the console client CA.
    console_client_ca: bytes
    #: Signed by a one-shot subordinate of the VNC server CA (``vnc_issuer``), which also
    #: revoked it (``vnc_crl``): see ``CertificateAuthority.issue_sealed``.
    vnc_server: Issued
    vnc_issuer: bytes
    vnc_crl: bytes

    def issued(self) -> dict[CertPurpose, Issued]:
        return {
            CertPurpose.LIBVIRT_SERVER: self.libvirt_server,
            CertPurpose.LIBVIRT_PEER_CLIENT: self.libvirt_client,
            CertPurpose.MIGRATION_SERVER: self.migration_server,
            CertPurpose.MIGRATION_CLIENT: self.migration_client,
            CertPurpose.VNC_SERVER: self.vnc_server,
        }


def host_client_cn(name: str) -> str:
    """The common name of host ``name``'s libvirt client certificate."""
    return f"{HOST_CLIENT_CN_PREFIX}{name}"


def cert_info(cert: x509.Certificate, purpose: CertPurpose) -> CertInfo:
    now = _x509.utcnow()
    issuer = cert.issuer.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    return CertInfo(
        purpose=purpose,
        subject=_x509.common_name(cert),
        issuer=str(issuer[0].value) if issuer else cert.issuer.rfc4514_string(),
        not_after=cert.not_valid_after_utc,
        expires_in_s=(cert.not_valid_after_utc - now).total_seconds(),
    )


class ClusterPki:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "pki"
        self.libvirt_ca = CertificateAuthority(
            self.root / "libvirt-ca", "Corral libvirt CA", ORGANIZATION
        )
        self.migration_ca = CertificateAuthority(
            self.root / "migration-ca", "Corral migration CA", ORGANIZATION
        )
        # Path length 1: each host's VNC certificate comes from a one-shot subordinate.
        self.vnc_server_ca = CertificateAuthority(
            self.root / "vnc-server-ca", "Corral VNC server CA", ORGANIZATION, path_length=1
        )
        self.console_client_ca = CertificateAuthority(
            self.root / "console-client-ca", "Corral console client CA", ORGANIZATION
        )
        # Browsers and the CLI trust this one for Corral's own HTTPS (nothing else).
        self.web_ca = CertificateAuthority(self.root / "web-ca", "Corral web CA", ORGANIZATION)

    @property
    def authorities(self) -> tuple[CertificateAuthority, ...]:
        return (
            self.libvirt_ca,
            self.migration_ca,
            self.vnc_server_ca,
            self.console_client_ca,
            self.web_ca,
        )

    # -- Corral's own certificates -----------------------------------------------------------
    @property
    def libvirt_pkipath(self) -> Path:
        """The directory for ``qemu+tls://HOST/system?pkipath=…``."""
        return self.root / "manager" / "libvirt"

    @property
    def console_dir(self) -> Path:
        return self.root / "manager" / "console"

    def ensure(self) -> list[str]:
        """Create missing CAs and Corral's certificates, renew Corral's certificates that expire
        within 30 days; what was done, in words (empty when nothing was)."""
        for directory in (self.root, self.root / "manager", self.root / "hosts"):
            private_dir(directory)
        done: list[str] = []
        with locked(self.root):
            for ca in self.authorities:
                if ca.ensure():
                    done.append(f"created {ca.common_name}")
            if self._ensure_leaf(
                self.libvirt_ca,
                LIBVIRT_CLIENT_CN,
                self.libvirt_pkipath / "clientcert.pem",
                self.libvirt_pkipath / "clientkey.pem",
            ):
                done.append("issued Corral's libvirt client certificate")
            write_atomic(self.libvirt_pkipath / "cacert.pem", self.libvirt_ca.cert_pem, CERT_MODE)
            if self._ensure_leaf(
                self.console_client_ca,
                CONSOLE_CLIENT_CN,
                self.console_dir / "client-cert.pem",
                self.console_dir / "client-key.pem",
            ):
                done.append("issued Corral's console proxy client certificate")
            write_atomic(self.console_dir / "ca-cert.pem", self.vnc_server_ca.cert_pem, CERT_MODE)
        return done

    def _ensure_leaf(
        self, ca: CertificateAuthority, cn: str, cert_path: Path, key_path: Path
    ) -> bool:
        if cert_path.exists() and key_path.exists():
            cert = _x509.load_cert(cert_path.read_bytes())
            fresh = cert.not_valid_after_utc - _x509.utcnow() > RENEW_BEFORE
            if fresh and cert.issuer == ca.cert.subject:
                return False
        ca.write_issued(ca.issue(cn, CLIENT), cert_path, key_path)
        return True

    @property
    def web_dir(self) -> Path:
        return self.root / "manager" / "web"

    def ensure_web_certificate(self, dns_names: list[str], ips: list[str]) -> tuple[Path, Path]:
        """Corral's HTTPS certificate (from the web CA) naming ``dns_names`` and ``ips``: issued
        when missing, expiring within 30 days, or naming something else; (cert, key) paths."""
        cert_path, key_path = self.web_dir / "server-cert.pem", self.web_dir / "server-key.pem"
        with locked(self.root):
            self.web_ca.ensure()
            private_dir(self.web_dir)
            if cert_path.exists() and key_path.exists():
                cert = _x509.load_cert(cert_path.read_bytes())
                fresh = cert.not_valid_after_utc - _x509.utcnow() > RENEW_BEFORE
                sans = _x509.subject_alt_names(cert)
                if (
                    fresh
                    and cert.issuer == self.web_ca.cert.subject
                    and sans
                    == (
                        set(dns_names),
                        set(ips),
                    )
                ):
                    return cert_path, key_path
            issued = self.web_ca.issue(WEB_SERVER_CN, SERVER, dns_names=dns_names, ips=ips)
            self.web_ca.write_issued(issued, cert_path, key_path)
        return cert_path, key_path

    def console_client_context(self) -> ssl.SSLContext:
        """A client context for VeNCrypt X509None to hosts' VNC servers: trusts the VNC server
        CA, presents the console proxy certificate. Connect with ``server_hostname`` set to
        the host's address (its VNC server certificate has it as a SAN)."""
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(self.console_dir / "ca-cert.pem")
        )
        context.load_cert_chain(
            self.console_dir / "client-cert.pem", self.console_dir / "client-key.pem"
        )
        return context

    def manager_certs(self) -> list[CertInfo]:
        """Corral's own certificates and the CAs."""
        infos = [cert_info(ca.cert, CertPurpose.CA) for ca in self.authorities if ca.exists()]
        for purpose, path in (
            (CertPurpose.LIBVIRT_CLIENT, self.libvirt_pkipath / "clientcert.pem"),
            (CertPurpose.CONSOLE_CLIENT, self.console_dir / "client-cert.pem"),
        ):
            if path.exists():
                infos.append(cert_info(_x509.load_cert(path.read_bytes()), purpose))
        return infos

    # -- hosts -------------------------------------------------------------------------------
    def issue_host(
        self, name: str, address: str, dns_names: Iterable[str] = (), ips: Iterable[str] = ()
    ) -> HostCertificates:
        """Certificates for host ``name`` reached at ``address`` (an IP or a DNS name): every
        one names the host (CN = ``name``) and has SANs for ``name``, ``address``, the extra
        DNS names (the host's own host names) and IPs."""
        dns = [name, *dns_names]
        ip_list = list(ips)
        (ip_list if _x509.is_ip(address) else dns).insert(0, address)

        def issue(ca: CertificateAuthority, profile: _x509.LeafProfile) -> Issued:
            return ca.issue(name, profile, dns_names=dns, ips=ip_list)

        vnc, vnc_issuer, vnc_crl = self.vnc_server_ca.issue_sealed(
            name, SERVER, dns_names=dns, ips=ip_list
        )
        return HostCertificates(
            libvirt_ca=self.libvirt_ca.cert_pem,
            libvirt_server=issue(self.libvirt_ca, SERVER),
            libvirt_client=self.libvirt_ca.issue(host_client_cn(name), CLIENT),
            migration_ca=self.migration_ca.cert_pem,
            migration_server=issue(self.migration_ca, SERVER),
            migration_client=issue(self.migration_ca, CLIENT),
            console_client_ca=self.console_client_ca.cert_pem,
            vnc_server=vnc,
            vnc_issuer=vnc_issuer,
            vnc_crl=vnc_crl,
        )

    def host_dir(self, name: str) -> Path:
        return self.root / "hosts" / name

    def save_host_certs(self, name: str, certs: HostCertificates) -> None:
        """Keep the certificates (not the keys) issued to ``name``: expiry, rotation."""
        directory = private_dir(self.host_dir(name))
        for purpose, issued in certs.issued().items():
            write_atomic(directory / f"{purpose.value}.pem", issued.cert_pem, CERT_MODE)

    def forget_host(self, name: str) -> None:
        shutil.rmtree(self.host_dir(name), ignore_errors=True)

    def save_pending(self, name: str, certs: HostCertificates, address: str) -> None:
        """Certificates of a bundle not installed yet; ``host add NAME`` adopts them."""
        directory = private_dir(self.root / "pending" / name)
        for purpose, issued in certs.issued().items():
            write_atomic(directory / f"{purpose.value}.pem", issued.cert_pem, CERT_MODE)
        write_atomic(directory / "address", address.encode(), CERT_MODE)

    def adopt_pending(self, name: str) -> str | None:
        """Make a bundle's certificates host ``name``'s; the address they name, if any."""
        pending = self.root / "pending" / name
        if not pending.is_dir():
            return None
        address = (pending / "address").read_text().strip()
        (pending / "address").unlink()
        self.forget_host(name)
        private_dir(self.root / "hosts")
        pending.rename(self.host_dir(name))
        return address or None

    def host_certs(self, name: str) -> list[CertInfo]:
        directory = self.host_dir(name)
        infos = []
        for purpose in (
            CertPurpose.LIBVIRT_SERVER,
            CertPurpose.LIBVIRT_PEER_CLIENT,
            CertPurpose.MIGRATION_SERVER,
            CertPurpose.MIGRATION_CLIENT,
            CertPurpose.VNC_SERVER,
        ):
            path = directory / f"{purpose.value}.pem"
            if path.exists():
                infos.append(cert_info(_x509.load_cert(path.read_bytes()), purpose))
        return infos
