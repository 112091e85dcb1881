"""Corral's blocks in libvirtd.conf and qemu.conf, and the installer's merge into an existing
file, against golden files (CORRAL_REGEN_GOLDEN=1 rewrites them)."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from corral.hostsetup import HostPaths, host_payload
from corral.hostsetup.config import libvirtd_block, qemu_block
from corral.hostsetup.layout import installer_script
from corral.pki import ClusterPki

DATA = Path(__file__).parent / "data"
UUID = "6f1e3a52-5b1c-4d8e-9c57-0d2b8e4f7a10"

EXISTING_LIBVIRTD = """\
# the administrator's own settings
listen_tls = 0
  listen_addr = "0.0.0.0"
host_uuid = "11111111-2222-3333-4444-555555555555"
log_level = 3
# BEGIN Corral (an older block)
listen_tls = 1
tls_port = "1"
# END Corral
max_clients = 5000
"""


def _golden(name: str, text: str) -> None:
    path = DATA / name
    if os.environ.get("CORRAL_REGEN_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs (CORRAL_REGEN_GOLDEN=1 rewrites it)"


def test_libvirtd_block() -> None:
    block = libvirtd_block(HostPaths(), "198.18.0.2", UUID)
    _golden("libvirtd.block.conf", block.text)
    assert block.keys[-1] == "?host_uuid"


def test_qemu_block() -> None:
    _golden("qemu.block.conf", qemu_block(HostPaths(), "198.18.0.2").text)


def _merge(tmp_path: Path, existing: str | None, block: str, keys: tuple[str, ...]) -> str:
    script = tmp_path / "activate.sh"
    script.write_bytes(installer_script())
    target = tmp_path / "libvirtd.conf"
    if existing is not None:
        target.write_text(existing)
    (tmp_path / "block").write_text(block)
    done = subprocess.run(
        ["sh", str(script), str(tmp_path), "merge", str(target), str(tmp_path / "block"), *keys],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout


def test_merge_keeps_the_admins_settings_and_an_existing_host_uuid(tmp_path: Path) -> None:
    block = libvirtd_block(HostPaths(), "198.18.0.2", UUID)
    merged = _merge(tmp_path, EXISTING_LIBVIRTD, block.text, block.keys)
    _golden("libvirtd.merged.conf", merged)
    # Idempotent: merging into the result again changes nothing.
    assert _merge(tmp_path, merged, block.text, block.keys) == merged


def test_merge_into_a_missing_file_is_the_block(tmp_path: Path) -> None:
    block = qemu_block(HostPaths(), "198.18.0.2")
    assert _merge(tmp_path, None, block.text, block.keys) == block.text


def test_payload_manifest_and_modes(tmp_path: Path) -> None:
    pki = ClusterPki(tmp_path)
    pki.ensure()
    payload = host_payload(pki.issue_host("h2", "198.18.0.2"), "198.18.0.2", UUID)
    _golden("manifest", payload.manifest())
    with tarfile.open(fileobj=io.BytesIO(payload.tar())) as tar:
        names = {m.name: m.mode for m in tar.getmembers()}
    assert names["activate.sh"] == 0o700
    assert all(mode == 0o600 for name, mode in names.items() if name.startswith("files/"))


@pytest.mark.parametrize("address", ["h2.example", "198.18.0.2"])
def test_listen_address_only_for_ips(address: str) -> None:
    text = libvirtd_block(HostPaths(), address if address[0].isdigit() else None, UUID).text
    assert ("listen_addr" in text) == address[0].isdigit()


def test_qemu_block_with_plain_migration_allowed() -> None:
    """Only when an admin allowed unencrypted migration for the cluster does a host stop
    forcing TLS on migration streams; everything else stays."""
    forced = qemu_block(HostPaths(), "198.18.0.2").text
    plain = qemu_block(HostPaths(), "198.18.0.2", plain_migration=True).text
    _golden("qemu.block.plain.conf", plain)
    assert forced.replace("migrate_tls_force = 1", "migrate_tls_force = 0") == plain


def test_payload_installs_the_hosts_libvirt_client_certificate(tmp_path: Path) -> None:
    """Peer-to-peer migration: libvirtd's default client certificate paths (root) hold a
    certificate named corral-host-NAME, which every host's tls_allowed_dn_list admits."""
    pki = ClusterPki(tmp_path)
    pki.ensure()
    certs = pki.issue_host("h2", "198.18.0.2")
    payload = host_payload(certs, "198.18.0.2", UUID)
    files = {f.path: f for f in payload.files}
    client = files["/etc/pki/libvirt/clientcert.pem"]
    assert client.data == certs.libvirt_client.cert_pem
    assert files["/etc/pki/libvirt/private/clientkey.pem"].mode == 0o600
    assert "CN=corral-host-h2" in certs.libvirt_client.cert.subject.rfc4514_string()
    libvirtd = next(text for path, _, text in payload.confs if path.endswith("libvirtd.conf"))
    assert 'tls_allowed_dn_list = ["CN=corral-manager", "CN=corral-host-*"]' in libvirtd
