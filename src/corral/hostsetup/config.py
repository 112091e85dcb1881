"""What Corral writes into a host's ``libvirtd.conf`` and ``qemu.conf``: pure functions.

Corral owns one block in each file, between ``# BEGIN Corral`` and ``# END Corral``. The host
installer (``activate.sh``) removes a previous block, comments out other live settings of the
keys the block sets (``#corral# key = …``) and appends the new block; everything else in the
file stays as the administrator wrote it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from corral.hostsetup.layout import HostPaths
from corral.pki import HOST_CLIENT_CN_PREFIX, LIBVIRT_CLIENT_CN

BEGIN = "# BEGIN Corral (written by `corral host enroll`: changes inside this block are lost)"
END = "# END Corral"
LIBVIRT_TLS_PORT = 16514


@dataclass(frozen=True)
class ConfigBlock:
    """One managed block: the keys it sets (a ``?`` prefix marks a key the host keeps when it
    already sets it) and its text."""

    path: str
    keys: tuple[str, ...]
    text: str


def _value(value: str | int | list[str]) -> str:
    if isinstance(value, int):
        return str(value)
    return json.dumps(value)  # libvirt's config syntax takes JSON-style strings and lists


def _block(
    path: str, settings: list[tuple[str, str | int | list[str]]], soft: set[str]
) -> ConfigBlock:
    lines = [BEGIN, *(f"{key} = {_value(value)}" for key, value in settings), END]
    keys = tuple(("?" + k) if k in soft else k for k, _ in settings)
    return ConfigBlock(path, keys, "\n".join(lines) + "\n")


def libvirtd_block(paths: HostPaths, listen_ip: str | None, host_uuid: str) -> ConfigBlock:
    """libvirtd listens for TLS (on ``listen_ip``, else on every address), admits only clients
    with Corral's certificate or another host's (``CN=corral-host-*``, for peer-to-peer
    migration; only Corral's libvirt CA issues them), and has its own ``host_uuid`` (two hosts
    with the same UUID cannot migrate to each other; an existing ``host_uuid`` is kept)."""
    settings: list[tuple[str, str | int | list[str]]] = [
        ("listen_tls", 1),
        ("listen_tcp", 0),
    ]
    if listen_ip:
        settings.append(("listen_addr", listen_ip))
    settings += [
        ("tls_port", str(LIBVIRT_TLS_PORT)),
        ("auth_tls", "none"),
        ("ca_file", paths.libvirt_ca),
        ("cert_file", paths.libvirt_cert),
        ("key_file", paths.libvirt_key),
        ("tls_no_verify_certificate", 0),
        ("tls_allowed_dn_list", [f"CN={LIBVIRT_CLIENT_CN}", f"CN={HOST_CLIENT_CN_PREFIX}*"]),
        ("host_uuid", host_uuid),
    ]
    return _block(paths.libvirtd_conf, settings, {"host_uuid"})


def qemu_block(paths: HostPaths, vnc_listen: str, *, plain_migration: bool = False) -> ConfigBlock:
    """VNC only over TLS with a verified client certificate (the console client CA signs just
    Corral's console proxy), migration over TLS verified both ways — and *only* over TLS or a
    tunnel (``migrate_tls_force``) unless an admin allowed unencrypted migration for the
    cluster (``allow_insecure_migration``) before this host was enrolled or its certificates
    rotated: then the host also accepts plain TCP migration streams Corral asks for."""
    settings: list[tuple[str, str | int | list[str]]] = [
        ("vnc_listen", vnc_listen),
        ("vnc_tls", 1),
        ("vnc_tls_x509_cert_dir", paths.vnc_dir),
        ("vnc_tls_x509_verify", 1),
        ("migrate_tls_x509_cert_dir", paths.migrate_dir),
        ("migrate_tls_x509_verify", 1),
        ("migrate_tls_force", 0 if plain_migration else 1),
    ]
    return _block(paths.qemu_conf, settings, set())
