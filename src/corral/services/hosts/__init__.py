"""Host use cases, one module each.

registry.py   the hosts and their live libvirt connections; add, remove, maintenance,
              certificate expiry (``HostService``: what every other service uses)
enroll.py     enroll a host over SSH (a task), or make a bundle to install by hand
certs.py      rotate a host's certificates (a task), reload running guests' VNC TLS
uri_policy.py which URIs a host may be added with (Corral's own directories, test hosts)
_install.py   what enroll and rotate share: stage, activate, verify, commit or roll back
"""

from corral.services.hosts.certs import CertRotation
from corral.services.hosts.enroll import HostEnrollment
from corral.services.hosts.registry import EventHandler, HostService
from corral.services.hosts.uri_policy import HostUriPolicy

__all__ = ["CertRotation", "EventHandler", "HostEnrollment", "HostService", "HostUriPolicy"]
