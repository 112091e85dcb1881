"""The NoCloud seed: an ISO 9660 image labelled ``cidata`` holding cloud-init's files.

cloud-init's NoCloud datasource looks for a file system whose label is ``cidata`` (or
``CIDATA``), mounts it and reads ``meta-data``, ``user-data`` and, when present,
``network-config`` by those exact names. Plain ISO 9660 cannot spell them (upper case, 8.3,
no ``-``), so the image carries both Rock Ridge (what Linux's isofs reads first) and Joliet
names for every file; the ISO 9660 names are only what an old reader would fall back to.

Written in memory with ``pycdlib`` (no ``genisoimage`` process, no temporary files): seeds are
a few KiB.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import pycdlib

__all__ = ["VOLUME_ID", "build_seed_iso", "meta_data_for"]

#: The volume label NoCloud searches block devices for.
VOLUME_ID = "cidata"

# cloud-init's file name -> the ISO 9660 level 1 name a reader without extensions would see.
_ISO_NAMES = {
    "meta-data": "METADATA.;1",
    "user-data": "USERDATA.;1",
    "network-config": "NETWORKC.;1",
}


def meta_data_for(instance_id: str, hostname: str) -> str:
    """NoCloud's ``meta-data``: a new ``instance-id`` makes cloud-init run its first-boot
    modules again (a changed seed must carry a new one); ``local-hostname`` is the hostname
    unless user-data sets another. Quoted as JSON strings, which YAML reads as they are."""
    return (
        f'instance-id: "{_yaml_escape(instance_id)}"\nlocal-hostname: "{_yaml_escape(hostname)}"\n'
    )


def _yaml_escape(text: str) -> str:
    # A double-quoted YAML scalar: only the backslash, the quote and control characters need
    # escaping; callers pass validated names, this keeps an odd one from breaking the file.
    out = []
    for char in text:
        if char in '\\"':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)


@contextmanager
def _new_iso() -> Iterator[pycdlib.PyCdlib]:
    iso = pycdlib.PyCdlib()
    iso.new(
        interchange_level=3,
        vol_ident=VOLUME_ID,
        rock_ridge="1.09",
        joliet=3,
    )
    try:
        yield iso
    finally:
        iso.close()


def build_seed_iso(meta_data: str, user_data: str, network_config: str | None = None) -> bytes:
    """The bytes of a NoCloud seed ISO with ``meta-data``, ``user-data`` and, when given,
    ``network-config`` (cloud-init's network configuration, version 1 or 2)."""
    files = {"meta-data": meta_data, "user-data": user_data}
    if network_config is not None:
        files["network-config"] = network_config
    with _new_iso() as iso:
        for name, text in files.items():
            data = text.encode()
            iso.add_fp(
                io.BytesIO(data),
                len(data),
                iso_path="/" + _ISO_NAMES[name],
                rr_name=name,
                joliet_path="/" + name,
            )
        out = io.BytesIO()
        iso.write_fp(out)
    return out.getvalue()
