"""Host use cases, one module each.

registry.py   the hosts and their live libvirt connections; add, remove, maintenance,
              certificate expiry (``HostService``: what every other service uses)
enroll.py     enroll a host over SSH (a task), or make a bundle to install by hand
certs.py      rotate a host's certificates (a task), reload running guests' VNC TLS
_install.py   what enroll and rotate share: stage, activate, verify, commit or roll back
"""

from corral.services.hosts.certs import CertRotation
from corral.services.hosts.enroll import HostEnrollment
from corral.services.hosts.registry import EventHandler, HostService

__all__ = ["CertRotation", "EventHandler", "HostEnrollment", "HostService"]
