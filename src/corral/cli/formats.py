"""Sizes and durations as people read them in tables ("1.5 KiB", "2h 5m"). Pure, stdlib only:
``corral vm list`` prints with these without importing what parses input (``units.py``)."""

from __future__ import annotations

MIB = 1024 * 1024


def human_bytes(count: int | float) -> str:
    """1536 -> '1.5 KiB'; exact multiples print without decimals ('2 GiB')."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        # Compare the rounded value: 1023.96 GiB reads better as "1 TiB" than "1024.0 GiB".
        if abs(round(value, 1)) < 1024 or unit == "TiB":
            text = f"{value:.1f}".removesuffix(".0")
            return f"{text} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_mib(mib: int) -> str:
    return human_bytes(mib * MIB)


def human_duration(seconds: float | None) -> str:
    """Largest two units: '3d 4h', '2h 5m', '5m 12s', '42s'; '-' when unknown."""
    if seconds is None:
        return "-"
    total = int(seconds)
    if total < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{total}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            parts.append(f"{total // size}{unit}")
            total %= size
        elif parts:
            parts.append(f"0{unit}")
        if len(parts) == 2:
            break
    return " ".join(parts)
