"""How often libvirt started and stopped a domain's QEMU, from libvirt's own log of it.

libvirt appends to ``/var/log/libvirt/qemu/NAME.log`` a ``starting up`` line before each QEMU
process it starts for the domain and a ``shutting down`` line when it ends: evidence, independent
of Corral's database, of how many times an operation was really carried out (the failover tests
and bench count work done twice from it)."""

from __future__ import annotations

from pathlib import Path


def qemu_runs(log: Path) -> tuple[int, int]:
    """(starts, stops) recorded in a domain's QEMU log; (0, 0) when it was never started."""
    try:
        text = log.read_text(errors="replace")
    except FileNotFoundError:
        return (0, 0)
    lines = text.splitlines()
    starts = sum(1 for line in lines if ": starting up libvirt version:" in line)
    stops = sum(1 for line in lines if ": shutting down, reason=" in line)
    return (starts, stops)
