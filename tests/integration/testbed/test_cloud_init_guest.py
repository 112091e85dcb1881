"""The cloud-init test guest boots under TCG with a NoCloud seed from ``build_seed_iso`` and does
what the seed says: one boot, every check read from its serial console."""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path

import libvirt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from corral.cloudinit.seed import build_seed_iso, meta_data_for
from corral.testbed.cloud_guest import CloudGuest, cloud_domain_xml
from corral.testbed.guest_domains import SerialLog, serial_log_path
from corral.testbed.guest_images import make_overlay
from corral.testbed.private_libvirtd import PrivateLibvirtd

pytestmark = pytest.mark.integration

# systemd and cloud-init's three stages take ~50 s under TCG on an idle machine; two shared
# cores under a full suite can be several times slower.
BOOT_TIMEOUT = 300
MAC = "52:54:00:c1:00:01"
HOSTNAME = "cloudy-1"
ADDRESS = "192.0.2.10/24"
DISK_GIB = 3


def _ssh_key() -> str:
    public = Ed25519PrivateKey.generate().public_key()
    raw = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return raw.decode() + " tester@corral"


#: What each runcmd line prints, tagged, on the console (/dev/console is ttyS0): the serial log
#: then holds the guest's own view of its hostname, the key file, the marker and eth0's address.
SHOWN = {
    "HOST": "$(hostname)",
    "KEYS": "$(cat /home/alice/.ssh/authorized_keys)",
    "MARK": "$(ls /var/lib/corral-marker-*)",
    "IP": "$(ip -4 -o addr show dev eth0)",
    "ROOT": "$(df -k --output=size / | tail -n 1)",
}


def _user_data(key: str, nonce: str) -> str:
    shows = "".join(
        f"  - [sh, -c, 'echo CORRAL-{tag}-{nonce} {what} > /dev/console']\n"
        for tag, what in SHOWN.items()
    )
    return f"""#cloud-config
hostname: {HOSTNAME}
users:
  - name: alice
    shell: /bin/sh
    ssh_authorized_keys:
      - "{key}"
runcmd:
  - [sh, -c, "touch /var/lib/corral-marker-{nonce}"]
{shows}"""


NETWORK_CONFIG = f"""version: 2
ethernets:
  nic0:
    match:
      macaddress: "{MAC}"
    set-name: eth0
    addresses: [{ADDRESS}]
    gateway4: 192.0.2.1
    nameservers:
      addresses: [192.0.2.53]
"""


def test_cloud_init_guest_applies_a_nocloud_seed(
    conn: libvirt.virConnect,
    private_libvirtd: PrivateLibvirtd,
    cloud_guest: CloudGuest,
    tmp_path: Path,
) -> None:
    nonce = uuid.uuid4().hex[:8]
    name = f"ci-{nonce}"
    key = _ssh_key()
    seed = tmp_path / "seed.iso"
    seed.write_bytes(
        build_seed_iso(meta_data_for(f"i-{nonce}", name), _user_data(key, nonce), NETWORK_CONFIG)
    )
    disk = make_overlay(cloud_guest.disk, tmp_path / f"{name}.qcow2")
    # A disk larger than the image, as a VM from a template may have: cloud-init grows the root.
    subprocess.run(["qemu-img", "resize", "-q", str(disk), f"{DISK_GIB}G"], check=True)
    # Booted from its own disk (SeaBIOS, syslinux), as a VM made from a template would be.
    dom = conn.defineXML(cloud_domain_xml(name, cloud_guest, disk, seed, mac=MAC))
    try:
        dom.create()
        log = SerialLog(private_libvirtd.host_path(serial_log_path(name)))

        def line(tag: str) -> str:
            pattern = re.compile(rb"CORRAL-%s-%s ([^\r\n]*)" % (tag.encode(), nonce.encode()))
            return log.wait_for(pattern, BOOT_TIMEOUT).group(1).decode()

        assert line("HOST") == HOSTNAME
        assert line("KEYS") == key
        assert line("MARK") == f"/var/lib/corral-marker-{nonce}"
        address = line("IP")
        assert "eth0" in address and f"inet {ADDRESS}" in address, address
        assert int(line("ROOT")) > (DISK_GIB - 0.5) * 2**20  # KiB: grown from the image's 2 GiB
        assert b"Datasource DataSourceNoCloud" in log.wait_for(
            re.compile(rb"Cloud-init v\. \S+ finished at [^\r\n]*"), 60
        ).group(0)
    finally:
        if dom.isActive():
            dom.destroy()
        dom.undefine()
