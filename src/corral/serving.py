"""How Corral serves: plain HTTP on loopback only, HTTPS as soon as it listens beyond it.

Browser sessions and API tokens travel in every request, so nothing but the machine itself may
ever see them in clear. On 127.0.0.1 (or ::1) plain HTTP is fine; any other listen address
gets HTTPS with the operator's certificate (``tls_cert``/``tls_key``) or, without one, a
certificate from Corral's own web CA (``DATA_DIR/pki/web-ca/ca-cert.pem``: give it to browsers
and to ``corral --ca-cert``).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

from corral.config import Settings
from corral.errors import InvalidRequest
from corral.pki import ClusterPki

_LOCAL_NAMES = {"localhost", "localhost.localdomain"}


def is_loopback(host: str) -> bool:
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Serving:
    scheme: str
    cert: Path | None = None
    key: Path | None = None
    #: The CA a client must trust: Corral's web CA (None: the operator's or plain HTTP).
    ca_cert: Path | None = None

    def local_url(self, settings: Settings) -> str:
        """The URL this machine's CLI uses (loopback when Corral listens on every address)."""
        host = settings.listen_host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"{self.scheme}://{host}:{settings.listen_port}"


def certificate_names(settings: Settings) -> tuple[list[str], list[str]]:
    """What Corral's own certificate names: the host's names, loopback, the listen address
    and ``public_names`` (DNS names or IP addresses the operator adds)."""
    dns = {"localhost", socket.gethostname(), socket.getfqdn()}
    ips = {"127.0.0.1", "::1"}
    for name in [settings.listen_host, *settings.public_names]:
        if name in ("", "0.0.0.0", "::"):
            continue
        try:
            ips.add(str(ipaddress.ip_address(name)))
        except ValueError:
            dns.add(name)
    return sorted(d for d in dns if d), sorted(ips)


def plan_serving(settings: Settings, pki: ClusterPki | None = None) -> Serving:
    """HTTP or HTTPS, and with which certificate (issued now if Corral's own is needed)."""
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise InvalidRequest("set both tls_cert and tls_key (the certificate and its key), or none")
    if settings.tls_cert is not None and settings.tls_key is not None:
        for label, path in (("tls_cert", settings.tls_cert), ("tls_key", settings.tls_key)):
            if not path.is_file():
                raise InvalidRequest(f"{label} {path} does not exist or is not a file")
        return Serving("https", settings.tls_cert, settings.tls_key)
    if is_loopback(settings.listen_host):
        return Serving("http")
    pki = pki or ClusterPki(settings.data_dir)
    pki.ensure()
    cert, key = pki.ensure_web_certificate(*certificate_names(settings))
    return Serving("https", cert, key, pki.web_ca.cert_path)
