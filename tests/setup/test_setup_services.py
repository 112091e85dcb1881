"""What `make test`'s set-up leaves running, and what it installs for the storage domains."""

from __future__ import annotations

import subprocess
from pathlib import Path

# rpcbind, NFS, iSCSI: the test bed's storage servers listen only in its own namespaces.
STORAGE_PORTS = {111, 2049, 3260}
ISCSI_DIRECT = Path("/usr/lib/x86_64-linux-gnu/libvirt/storage-backend")


def _listening_ports(table: str) -> set[int]:
    """Local ports of listening (TCP) or bound (UDP) sockets in this process's network
    namespace, the machine's own (tests run there), from /proc/net/TABLE."""
    ports = set()
    for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
        fields = line.split()
        local, state = fields[1], fields[3]
        if table.startswith("udp") or state == "0A":  # 0A: TCP_LISTEN
            ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def test_no_storage_server_listens_in_the_machines_own_namespace() -> None:
    for table in ("tcp", "tcp6", "udp", "udp6"):
        assert not _listening_ports(table) & STORAGE_PORTS, f"/proc/net/{table}"


def test_storage_clients_are_installed() -> None:
    for package in ("qemu-block-extra", "libvirt-daemon-driver-storage-iscsi-direct"):
        status = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True
        )
        assert status.stdout == "install ok installed", package
    assert (ISCSI_DIRECT / "libvirt_storage_backend_iscsi-direct.so").exists()
    modules = Path("/usr/lib/x86_64-linux-gnu/qemu")
    assert (modules / "block-nfs.so").exists() and (modules / "block-iscsi.so").exists()
