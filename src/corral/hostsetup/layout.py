"""Where Corral's files go on a host, and the installer's payload (a tar) that carries them."""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass, field
from importlib import resources


@dataclass(frozen=True)
class HostPaths:
    """Paths on the host. libvirt's defaults where it has them."""

    libvirtd_conf: str = "/etc/libvirt/libvirtd.conf"
    qemu_conf: str = "/etc/libvirt/qemu.conf"
    libvirt_ca: str = "/etc/pki/CA/cacert.pem"
    libvirt_cert: str = "/etc/pki/libvirt/servercert.pem"
    libvirt_key: str = "/etc/pki/libvirt/private/serverkey.pem"
    #: libvirtd's own client certificate (libvirt's default paths for root): the source of a
    #: peer-to-peer migration connects to the destination's libvirtd with it.
    libvirt_client_cert: str = "/etc/pki/libvirt/clientcert.pem"
    libvirt_client_key: str = "/etc/pki/libvirt/private/clientkey.pem"
    migrate_dir: str = "/etc/pki/libvirt-migrate"
    vnc_dir: str = "/etc/pki/libvirt-vnc"
    #: Staging directories of the installer (tmpfs on most hosts: keys never reach a disk
    #: there before they are installed).
    staging_root: str = "/run/corral-enroll"


@dataclass(frozen=True)
class HostFile:
    """A file to install: ``group`` "qemu" means the group QEMU runs as (libvirt-qemu on
    Debian), which must read the migration and VNC keys."""

    path: str
    data: bytes
    mode: int = 0o644
    group: str = "root"


@dataclass
class Payload:
    """Files, managed config blocks and the installer, packed for the host."""

    files: list[HostFile] = field(default_factory=list)
    confs: list[tuple[str, tuple[str, ...], str]] = field(default_factory=list)

    def manifest(self) -> str:
        lines = [f"file {f.mode:04o} {f.group} {f.path}" for f in self.files]
        lines += [f"conf {path} {' '.join(keys)}" for path, keys, _ in self.confs]
        return "\n".join(lines) + "\n"

    def entries(self) -> list[tuple[str, bytes, int]]:
        """(relative path, content, mode) of everything in the staging directory."""
        out = [("manifest", self.manifest().encode(), 0o600)]
        out.append(("activate.sh", installer_script(), 0o700))
        out += [(f"files{f.path}", f.data, 0o600) for f in self.files]
        out += [(f"conf{path}", text.encode(), 0o600) for path, _, text in self.confs]
        return out

    def tar(self) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, data, mode in self.entries():
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), mode, 0
                tar.addfile(info, io.BytesIO(data))
        return buffer.getvalue()


def installer_script() -> bytes:
    return resources.files("corral.hostsetup").joinpath("activate.sh").read_bytes()
