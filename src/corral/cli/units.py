"""Parsing what people type (sizes, disk and NIC specs) and formatting what they read.

Pure functions, no I/O. Parse errors are ``ValueError`` with a message that says what to type
instead; the commands turn them into usage errors (exit code 2).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from pydantic import ValidationError

from corral.model.rules import pattern_rule
from corral.model.vm import DiskSpec, NicSpec

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
TIB = 1024 * GIB

# Binary multiples throughout, as qemu-img counts and as memory is sold: "G", "GB" and "GiB"
# all mean 2**30 (libvirt's XML alone reads "GB" as 10**9; nobody types that XML here). A bare
# number is in the unit of the API field it fills: MiB for memory, GiB for disks.
_UNITS: dict[str, int] = {
    "": 0,  # placeholder: the caller's default unit
    "b": 1,
    "k": KIB,
    "kb": KIB,
    "kib": KIB,
    "m": MIB,
    "mb": MIB,
    "mib": MIB,
    "g": GIB,
    "gb": GIB,
    "gib": GIB,
    "t": TIB,
    "tb": TIB,
    "tib": TIB,
}

_SIZE_RE = re.compile(r"^\s*(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(?P<unit>[A-Za-z]*)\s*$")

_SIZE_HINT = (
    "use a number with an optional unit K, M, G or T (e.g. 512M, 2G, 1.5GiB; G, GB and GiB "
    "all mean GiB)"
)
#: The rule, as the options' help states it.
MEMORY_HELP = "a bare number is MiB; G, GB and GiB all mean GiB"
DISK_SIZE_HELP = "a bare number is GiB; G, GB and GiB all mean GiB"


def parse_size(text: str, default_unit: int) -> int:
    """Return the size in bytes of ``text`` ("512M", "2G", "1.5GiB", "10"); a bare number is in
    ``default_unit`` bytes. Raises ``ValueError`` for anything else or for a size of zero."""
    match = _SIZE_RE.match(text)
    if match is None:
        raise ValueError(f"invalid size {text!r}: {_SIZE_HINT}")
    unit_text = match["unit"].lower()
    if unit_text not in _UNITS:
        raise ValueError(f"invalid size {text!r}: unknown unit {match['unit']!r}; {_SIZE_HINT}")
    unit = _UNITS[unit_text] or default_unit
    value = float(match["number"]) * unit
    if not math.isfinite(value) or value < 1:
        raise ValueError(f"invalid size {text!r}: the size must be greater than zero")
    return round(value)


def parse_memory_mib(text: str) -> int:
    """Memory for ``--memory``: a bare number is MiB; the result must be whole MiB."""
    size = parse_size(text, MIB)
    if size % MIB:
        raise ValueError(f"invalid memory size {text!r}: give a whole number of MiB (e.g. 512M)")
    return size // MIB


def parse_disk_size_gib(text: str) -> float:
    """Disk size for ``size=``: a bare number is GiB."""
    return parse_size(text, GIB) / GIB


_DISK_KEYS = ("size", "base", "import", "volume", "name", "bus", "domain")
_DISK_HINT = (
    "use size=10G[,name=data][,bus=virtio][,domain=DOMAIN], base=IMAGE, "
    "import=/path/to/image.qcow2 or volume=VOLUME,domain=DOMAIN"
)


def _split_spec(text: str, allowed: Iterable[str], what: str, hint: str) -> dict[str, str]:
    """Split ``key=value,key=value`` and reject unknown or repeated keys."""
    allowed = tuple(allowed)
    fields: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or not key or not value.strip():
            raise ValueError(f"invalid {what} {text!r}: {item!r} is not key=value; {hint}")
        if key not in allowed:
            raise ValueError(
                f"invalid {what} {text!r}: unknown key {key!r} (known: {', '.join(allowed)})"
            )
        if key in fields:
            raise ValueError(f"invalid {what} {text!r}: {key!r} given twice")
        fields[key] = value.strip()
    return fields


def validation_message(exc: ValidationError) -> str:
    """pydantic's complaint in words a person can act on: ``field: what to do; …``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = pattern_rule(dict(err)) or str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def parse_disk_spec(text: str, default_name: str = "root") -> DiskSpec:
    """``size=10G[,name=data][,bus=virtio][,domain=D]`` | ``base=IMG`` | ``import=/path`` |
    ``volume=VOL`` (an existing volume of the domain, e.g. ``volume=lun-1,domain=iscsi1``)."""
    fields = _split_spec(text, _DISK_KEYS, "disk spec", _DISK_HINT)
    sources = [key for key in ("size", "base", "import", "volume") if key in fields]
    if len(sources) != 1:
        raise ValueError(f"invalid disk spec {text!r}: give exactly one source; {_DISK_HINT}")
    values: dict[str, object] = {"name": fields.get("name", default_name)}
    if "bus" in fields:
        values["bus"] = fields["bus"].lower()
    if "domain" in fields:
        values["domain"] = fields["domain"]
    if "size" in fields:
        try:
            values["size_gib"] = parse_disk_size_gib(fields["size"])
        except ValueError as exc:
            raise ValueError(f"invalid disk spec {text!r}: {exc}") from None
    if "base" in fields:
        values["base_image"] = fields["base"]
    if "import" in fields:
        values["import_path"] = fields["import"]
    if "volume" in fields:
        values["volume"] = fields["volume"]
    try:
        return DiskSpec.model_validate(values)
    except ValidationError as exc:
        raise ValueError(f"invalid disk spec {text!r}: {validation_message(exc)}") from None


def parse_disk_specs(texts: Iterable[str]) -> list[DiskSpec]:
    """Parse repeated ``--disk`` options; unnamed disks become ``root``, then ``disk1``, …"""
    texts = list(texts)
    fields = [_split_spec(t, _DISK_KEYS, "disk spec", _DISK_HINT) for t in texts]
    taken = {f["name"] for f in fields if "name" in f}
    disks: list[DiskSpec] = []
    counter = 0
    for text, given in zip(texts, fields, strict=True):
        name = given.get("name")
        if name is None:
            name = "root"
            while name in taken:
                counter += 1
                name = f"disk{counter}"
            taken.add(name)
        disks.append(parse_disk_spec(text, default_name=name))
    return disks


_NIC_KEYS = ("network", "model", "mac")
_NIC_HINT = "use network=nat|user|NAME[,model=virtio|e1000|rtl8139][,mac=52:54:00:..]"


def parse_nic_spec(text: str) -> NicSpec:
    """``network=nat`` (or just ``nat``), optionally ``,model=e1000,mac=52:54:00:12:34:56``."""
    if "=" not in text:
        text = f"network={text}"
    fields = _split_spec(text, _NIC_KEYS, "nic spec", _NIC_HINT)
    if "mac" in fields:
        fields["mac"] = fields["mac"].lower()
    try:
        return NicSpec.model_validate(fields)
    except ValidationError as exc:
        raise ValueError(f"invalid nic spec {text!r}: {validation_message(exc)}") from None
