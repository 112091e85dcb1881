"""Certificates Corral issues: what each is for and when it expires."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class CertPurpose(StrEnum):
    """What a certificate is for. The first five live on hosts, the rest on the manager."""

    LIBVIRT_SERVER = "libvirt-server"  # libvirtd's TLS listener (libvirt CA)
    # A host's libvirtd connecting to another host's: peer-to-peer migration (libvirt CA)
    LIBVIRT_PEER_CLIENT = "libvirt-peer-client"
    MIGRATION_SERVER = "migration-server"  # QEMU receiving a migration (migration CA)
    MIGRATION_CLIENT = "migration-client"  # QEMU sending a migration (migration CA)
    VNC_SERVER = "vnc-server"  # QEMU's VNC servers (VNC server CA)
    LIBVIRT_CLIENT = "libvirt-client"  # Corral connecting to libvirtd (libvirt CA)
    CONSOLE_CLIENT = "console-client"  # Corral's console proxy (console client CA, alone)
    WEB_SERVER = "web-server"  # Corral's own HTTPS (web CA), when it listens beyond loopback
    CA = "ca"  # a certificate authority


class CertInfo(BaseModel):
    purpose: CertPurpose
    subject: str = Field(description="the certificate's common name")
    issuer: str = Field(description="the issuing CA's common name")
    not_after: datetime
    expires_in_s: float = Field(description="seconds until it expires (negative: expired)")
