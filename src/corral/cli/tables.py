"""The shapes of the CLI's Rich tables, and the VM list's table read straight from the API's JSON.

``corral vm list`` is the command people run most; it prints from the JSON it gets, checked
here field by field, rather than through the pydantic models (``corral.model``), whose import
alone takes longer than the whole listing should (see ``tests/unit/cli/test_cli_imports.py``).
Pure rendering: the commands decide when to print.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.text import Text

from corral.cli.formats import human_duration, human_mib

if TYPE_CHECKING:
    from rich.table import Table

#: Colours of VM states (``model.vm.VmState``) and task states (``model.task.TaskState``).
STATE_STYLE: dict[str, str] = {
    "running": "green",
    "paused": "yellow",
    "shutoff": "dim",
    "shutting_down": "yellow",
    "crashed": "bold red",
    "pmsuspended": "cyan",
    "blocked": "yellow",
    "unknown": "magenta",
    "missing": "bold red",
    "pending": "cyan",
    "succeeded": "green",
    "failed": "bold red",
    "cancelled": "yellow",
}


def state_text(state: str) -> Text:
    return Text(str(state), style=STATE_STYLE.get(state, ""))


def when(moment: datetime | None) -> str:
    """Local time, to the second; '-' when unknown."""
    if moment is None:
        return "-"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def row(table: Table, *cells: str | Text) -> None:
    """Add a row; plain strings stay plain (server text like "[x]" is not Rich markup)."""
    table.add_row(*(Text(cell) if isinstance(cell, str) else cell for cell in cells))


def table(*columns: str) -> Table:
    from rich.table import Table  # not needed by ``vm list`` (see ``columns``)

    result = Table(box=None, header_style="bold", pad_edge=False)
    for column in columns:
        result.add_column(column, overflow="fold")
    return result


def details(rows: Iterable[tuple[str, str | Text]]) -> Table:
    from rich.table import Table

    result = Table(box=None, show_header=False, pad_edge=False)
    result.add_column(style="bold")
    result.add_column(overflow="fold")
    for key, value in rows:
        row(result, key, value)
    return result


@dataclass(frozen=True)
class VmRow:
    """The fields of a ``VmInfo`` the VM list shows (same names, same JSON types)."""

    name: str
    host: str
    state: str
    vcpus: int
    memory_mib: int
    uptime_s: float | None = None
    cpu_time_s: float | None = None


#: JSON types each ``VmRow`` field takes (``None`` where the field is optional).
_VM_ROW_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "host": (str,),
    "state": (str,),
    "vcpus": (int,),
    "memory_mib": (int,),
    "uptime_s": (int, float, type(None)),
    "cpu_time_s": (int, float, type(None)),
}


def vm_rows(items: Any) -> list[VmRow]:
    """``VmRow``s of a JSON list of VMs; ``ValueError("3.vcpus: …")`` names what does not fit."""
    if not isinstance(items, list):
        raise ValueError(": not a list")
    rows = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"{index}: not an object")
        values: dict[str, Any] = {}
        for f in fields(VmRow):
            value = item.get(f.name)
            kinds = _VM_ROW_TYPES[f.name]
            if not isinstance(value, kinds) or isinstance(value, bool):
                raise ValueError(f"{index}.{f.name}: {value!r} is not a {kinds[0].__name__}")
            values[f.name] = value
        rows.append(VmRow(**values))
    return rows


def columns(headers: Sequence[str], rows: Iterable[Sequence[str | Text]]) -> Text:
    """What ``table(*headers)`` prints (bold headers, columns two spaces apart), as one
    ``Text``: Rich's ``Table`` measures every cell several times, and printing 100 VMs with it
    took 80-250 ms here, as long as the rest of ``corral vm list``. Print it with
    ``soft_wrap=True`` (a narrow terminal wraps the lines rather than Rich folding cells)."""
    cells = [[Text(c) if isinstance(c, str) else c for c in line] for line in rows]
    widths = [cell_len(h) for h in headers]
    for line in cells:
        widths = [max(w, c.cell_len) for w, c in zip(widths, line, strict=True)]
    out = Text(no_wrap=True)
    last = len(headers) - 1
    out.append("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(), "bold")
    for line in cells:
        out.append("\n")
        for index, (cell, width) in enumerate(zip(line, widths, strict=True)):
            out.append_text(cell)
            if index < last:
                out.append(" " * (width - cell.cell_len + 2))
    return out


def vm_table(vms: Iterable[VmRow]) -> Text:
    """The VM list (see ``columns``)."""
    return columns(
        ("NAME", "HOST", "STATE", "VCPUS", "MEMORY", "UPTIME", "CPU TIME"),
        (
            (
                vm.name,
                vm.host,
                state_text(vm.state),
                str(vm.vcpus),
                human_mib(vm.memory_mib),
                human_duration(vm.uptime_s),
                human_duration(vm.cpu_time_s),
            )
            for vm in vms
        ),
    )
