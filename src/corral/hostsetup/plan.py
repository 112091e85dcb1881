"""Certificates + address → the payload a host gets (files with modes, config blocks)."""

from __future__ import annotations

import posixpath

from corral.hostsetup.config import libvirtd_block, qemu_block
from corral.hostsetup.layout import HostFile, HostPaths, Payload
from corral.pki import HostCertificates
from corral.pki._x509 import is_ip

KEY = 0o600
QEMU_KEY = 0o640  # root:QEMU's group: QEMU reads it when it sets up TLS
CERT = 0o644


def host_payload(
    certs: HostCertificates,
    address: str,
    host_uuid: str,
    paths: HostPaths | None = None,
    *,
    plain_migration: bool = False,
) -> Payload:
    """Files and configuration blocks for a host; ``plain_migration`` lets it accept
    unencrypted migration streams (the cluster's ``allow_insecure_migration``)."""
    p = paths or HostPaths()
    listen_ip = address if is_ip(address) else None
    mig, vnc = p.migrate_dir, p.vnc_dir
    j = posixpath.join
    files = [
        HostFile(p.libvirt_ca, certs.libvirt_ca, CERT),
        HostFile(p.libvirt_cert, certs.libvirt_server.cert_pem, CERT),
        HostFile(p.libvirt_key, certs.libvirt_server.key_pem, KEY),
        HostFile(p.libvirt_client_cert, certs.libvirt_client.cert_pem, CERT),
        HostFile(p.libvirt_client_key, certs.libvirt_client.key_pem, KEY),
        HostFile(j(mig, "ca-cert.pem"), certs.migration_ca, CERT),
        HostFile(j(mig, "server-cert.pem"), certs.migration_server.cert_pem, CERT),
        HostFile(j(mig, "server-key.pem"), certs.migration_server.key_pem, QEMU_KEY, "qemu"),
        HostFile(j(mig, "client-cert.pem"), certs.migration_client.cert_pem, CERT),
        HostFile(j(mig, "client-key.pem"), certs.migration_client.key_pem, QEMU_KEY, "qemu"),
        # Clients: the console client CA (Corral's console proxy alone) and the one-shot
        # issuer of this host's own VNC certificate, which QEMU needs to accept its own
        # certificate and whose CRL revokes that certificate for clients.
        HostFile(j(vnc, "ca-cert.pem"), certs.console_client_ca + certs.vnc_issuer, CERT),
        HostFile(j(vnc, "ca-crl.pem"), certs.vnc_crl, CERT),
        # The chain up to the VNC server CA, which Corral's console proxy trusts.
        HostFile(j(vnc, "server-cert.pem"), certs.vnc_server.cert_pem + certs.vnc_issuer, CERT),
        HostFile(j(vnc, "server-key.pem"), certs.vnc_server.key_pem, QEMU_KEY, "qemu"),
    ]
    blocks = [
        libvirtd_block(p, listen_ip, host_uuid),
        qemu_block(p, listen_ip or "0.0.0.0", plain_migration=plain_migration),
    ]
    return Payload(files, [(b.path, b.keys, b.text) for b in blocks])
