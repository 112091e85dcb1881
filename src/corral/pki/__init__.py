"""Corral's cluster PKI (``cryptography``): one CA per trust relation, certificates for hosts
and for Corral itself, kept under ``DATA_DIR/pki/`` (see :mod:`corral.pki.cluster`)."""

from corral.pki.authority import CertificateAuthority, Issued
from corral.pki.cluster import (
    CONSOLE_CLIENT_CN,
    HOST_CLIENT_CN_PREFIX,
    LIBVIRT_CLIENT_CN,
    ClusterPki,
    HostCertificates,
    cert_info,
    host_client_cn,
)

__all__ = [
    "CONSOLE_CLIENT_CN",
    "HOST_CLIENT_CN_PREFIX",
    "LIBVIRT_CLIENT_CN",
    "CertificateAuthority",
    "ClusterPki",
    "HostCertificates",
    "Issued",
    "cert_info",
    "host_client_cn",
]
