"""Setting up a host for Corral: the files (certificates, libvirt configuration) and the
host-side installer that puts them in place with a backup and undoes them on failure.

* :mod:`~corral.hostsetup.layout`  paths on the host; the payload (a tar) and its manifest
* :mod:`~corral.hostsetup.config`  Corral's blocks in libvirtd.conf and qemu.conf (pure)
* :mod:`~corral.hostsetup.plan`    certificates + address → payload
* :mod:`~corral.hostsetup.bundle`  the payload as a directory with ``install.sh`` (by hand)
* :mod:`~corral.hostsetup.ssh`     running the installer over SSH (the ``ssh`` binary)
* ``activate.sh``                  the installer itself (POSIX sh, runs on the host)
"""

from corral.hostsetup.layout import HostFile, HostPaths, Payload
from corral.hostsetup.plan import host_payload

__all__ = ["HostFile", "HostPaths", "Payload", "host_payload"]
