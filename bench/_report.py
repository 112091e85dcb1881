"""Shared output of every bench script: a table for people, one JSON object for machines.

    report("RFB decoding", rows, headline={"speedup_raw": 3.1}, json_mode=args.json)

``rows`` are dicts whose keys are the table's columns, in order (a row may lack some);
``headline`` holds the figures a benchmark is judged by. With ``json_mode`` only
``{"title", "rows", **headline}`` is printed, as one JSON object on one line.
"""

from __future__ import annotations

import json
import sys


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def report(
    title: str,
    rows: list[dict[str, object]],
    headline: dict[str, float],
    json_mode: bool = False,
) -> None:
    """Print the benchmark's rows and headline figures (as a table, or as JSON)."""
    if json_mode:
        print(json.dumps({"title": title, "rows": rows, **headline}, default=str))
        return
    # Every row's keys, in order of appearance: a row may have figures others do not.
    columns = list(dict.fromkeys(key for row in rows for key in row))
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain text keeps benches usable without Rich
        print(title)
        print("  ".join(columns))
        for row in rows:
            print("  ".join(_cell(row.get(c, "")) for c in columns))
        for key, value in headline.items():
            print(f"{key}: {_cell(value)}")
        sys.stdout.flush()
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="left" if column == columns[0] else "right")
    for row in rows:
        table.add_row(*(_cell(row.get(c, "")) for c in columns))
    console = Console()
    if not console.is_terminal:  # a log file: Rich would wrap at 80 columns
        console = Console(width=120)
    console.print(table)
    for key, value in headline.items():
        console.print(f"[bold]{key}[/bold]: {_cell(value)}")
