"""Finding a domain by UUID or by name."""

from __future__ import annotations

import re

import libvirt

_UUID = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")


def lookup(conn: libvirt.virConnect, uuid_or_name: str) -> libvirt.virDomain:
    if _UUID.match(uuid_or_name):
        return conn.lookupByUUIDString(uuid_or_name)
    return conn.lookupByName(uuid_or_name)
