"""``corral task …`` and the waiting every ``202`` answer goes through (a Rich progress bar)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import ClassVar

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Task as BarTask
from rich.text import Text

from corral.cli import context as c
from corral.cli import pages
from corral.cli.client import CliError, CorralClient, parse
from corral.cli.context import JsonOpt as JsonOpt  # where the commands have always found it
from corral.cli.output import task_details, task_reasons, task_table
from corral.cli.transport import Response
from corral.model.task import TaskInfo, TaskState

app = typer.Typer(help="Long-running work: list, show, wait for and cancel tasks.", cls=c.HelpGroup)

#: Polling interval bounds (s): start fast for short tasks, settle at the slower rate.
POLL_MIN_S = 0.2
POLL_MAX_S = 0.5


class _BytesColumn(ProgressColumn):
    """Bytes done/total, only for tasks that report them (imports, migrations)."""

    def __init__(self) -> None:
        super().__init__()
        self._download = DownloadColumn(binary_units=True)

    def render(self, task: BarTask) -> Text:
        if not task.fields.get("has_bytes"):
            return Text("")
        return self._download.render(task)


class _OutcomeColumn(SpinnerColumn):
    """A spinner while the task runs, then its outcome: a failed task's bar never reaches its
    end, and a spinner frozen mid-turn (or a tick) beside "failed" reads as still busy."""

    _MARKS: ClassVar[dict[str, Text]] = {
        TaskState.SUCCEEDED.value: Text("✓", style="green"),
        TaskState.FAILED.value: Text("✗", style="bold red"),
        TaskState.CANCELLED.value: Text("-", style="yellow"),
    }

    def render(self, task: BarTask) -> Text:
        mark = self._MARKS.get(str(task.fields.get("state")))
        if mark is not None:
            return mark
        rendered = super().render(task)
        return rendered if isinstance(rendered, Text) else Text(str(rendered))


def _describe(task: TaskInfo) -> str:
    """Bar text (Rich markup): the server's words escaped, the outcome coloured."""
    phase = f": {task.phase}" if task.phase else ""
    text = escape(f"{task.kind} {task.target}{phase}")
    if task.state == TaskState.FAILED:
        text += " [bold red]failed[/]"
    elif task.state == TaskState.CANCELLED:
        text += " [yellow]cancelled[/]"
    return text


def _bar_values(task: TaskInfo) -> tuple[float, float, bool]:
    """(completed, total, has_bytes). ``progress`` is a fraction 0-1 (what the server reports)."""
    if task.bytes_total:
        done = task.bytes_done or 0
        if task.state == TaskState.SUCCEEDED:
            done = task.bytes_total
        return float(done), float(task.bytes_total), True
    fraction = 1.0 if task.state == TaskState.SUCCEEDED else max(0.0, min(task.progress, 1.0))
    return fraction * 100, 100.0, False


def poll_task(
    client: CorralClient,
    task: TaskInfo,
    on_update: Callable[[TaskInfo], None],
    sleep: Callable[[float], None] = time.sleep,
) -> TaskInfo:
    """GET /tasks/{id} until the task finishes, calling ``on_update`` after every answer."""
    interval = POLL_MIN_S
    on_update(task)
    while not task.state.finished:
        sleep(interval)
        interval = min(POLL_MAX_S, interval + 0.1)
        task = parse(client.get(f"/tasks/{task.id}"), TaskInfo)
        on_update(task)
    return task


def _raise_unless_succeeded(task: TaskInfo) -> TaskInfo:
    if task.state == TaskState.FAILED:
        raise CliError(task.error or f"task {task.id} ({task.kind} {task.target}) failed")
    if task.state == TaskState.CANCELLED:
        raise CliError(task.error or f"task {task.id} ({task.kind} {task.target}) was cancelled")
    return task


def wait_for_task(client: CorralClient, task: TaskInfo, *, show_progress: bool = True) -> TaskInfo:
    """Wait for ``task`` with a progress bar on stderr; ``CliError`` unless it succeeded.

    Ctrl-C stops waiting, not the task: the message says how to resume or cancel.
    """
    try:
        if not show_progress:
            final = poll_task(client, task, lambda _: None)
        else:
            final = _poll_with_bar(client, task)
    except KeyboardInterrupt:
        raise CliError(
            f"stopped waiting; task {task.id} goes on: `corral task wait {task.id}` to watch it, "
            f"`corral task cancel {task.id}` to cancel it",
            exit_code=130,
        ) from None
    return _raise_unless_succeeded(final)


def _poll_with_bar(client: CorralClient, task: TaskInfo) -> TaskInfo:
    columns = (
        _OutcomeColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        _BytesColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=c.err, transient=False) as progress:
        bar = progress.add_task(_describe(task), total=100.0, has_bytes=False)

        def update(current: TaskInfo) -> None:
            completed, total, has_bytes = _bar_values(current)
            progress.update(
                bar,
                description=_describe(current),
                completed=completed,
                total=total,
                has_bytes=has_bytes,
                state=current.state.value,
            )

        return poll_task(client, task, update)


def follow_task(
    ctx: typer.Context, response: Response, *, no_wait: bool, json_flag: bool = False
) -> TaskInfo | None:
    """Handle a ``202 TaskInfo`` answer: print the id (``--no-wait``) or wait for the task.

    Returns the finished task, or ``None`` with ``--no-wait``.
    """
    task = parse(response, TaskInfo)
    as_json = c.want_json(ctx, json_flag)
    if no_wait:
        if as_json:
            c.print_json(response.json())
        else:
            c.out.print(task.id, markup=False)
        return None
    final = wait_for_task(c.client(ctx), task, show_progress=not as_json)
    return final


@app.command("list")
def list_tasks(
    ctx: typer.Context,
    state: TaskState | None = typer.Option(None, "--state", help="Only tasks in this state."),
    kind: str | None = typer.Option(None, "--kind", help="Only tasks of this kind (vm.import…)."),
    limit: int | None = typer.Option(
        None,
        "--limit",
        min=1,
        max=1000,
        help="Tasks per page (1-1000; default 100, with --all 1000).",
    ),
    cursor: str | None = typer.Option(
        None, "--cursor", help="Continue where a previous page ended (the cursor it printed)."
    ),
    every: bool = typer.Option(False, "--all", help="Every page, not only the first."),
    json_out: bool = JsonOpt,
) -> None:
    """List tasks, newest first."""
    filters = {"state": state, "kind": kind}
    listing = pages.fetch(
        c.client(ctx), "/tasks", filters, limit=limit, cursor=cursor, every=every, what="tasks"
    )
    tasks = listing.parsed(TaskInfo)

    def render() -> None:
        c.out.print(task_table(tasks))
        reasons = task_reasons(tasks, c.out.width)
        if reasons:
            c.out.print()
            for line in reasons:
                c.out.print(line)

    c.emit(ctx, json_out, listing.json(), render)
    pages.hint_more(listing, "tasks")


@app.command("show")
def show(
    ctx: typer.Context, task_id: str = typer.Argument(..., metavar="ID"), json_out: bool = JsonOpt
) -> None:
    """Show one task."""
    response = c.client(ctx).get(f"/tasks/{task_id}")
    task = parse(response, TaskInfo)
    c.emit(ctx, json_out, response.json(), lambda: c.out.print(task_details(task)))


@app.command("cancel")
def cancel(
    ctx: typer.Context, task_id: str = typer.Argument(..., metavar="ID"), json_out: bool = JsonOpt
) -> None:
    """Ask a running task to stop (migrations are aborted; the VM stays where it was)."""
    response = c.client(ctx).post(f"/tasks/{task_id}/cancel")
    task = parse(response, TaskInfo)
    c.emit(ctx, json_out, response.json(), lambda: c.info(f"task {task.id}: {task.state}"))


@app.command("wait")
def wait(
    ctx: typer.Context,
    task_id: str = typer.Argument(..., metavar="ID"),
    json_out: bool = JsonOpt,
) -> None:
    """Wait for a task with a progress bar; exit 1 with its error if it fails."""
    client = c.client(ctx)
    task = parse(client.get(f"/tasks/{task_id}"), TaskInfo)
    if c.want_json(ctx, json_out):
        final = poll_task(client, task, lambda _: None)
        c.print_json(final.model_dump(mode="json"))
        _raise_unless_succeeded(final)
        return
    final = wait_for_task(client, task)
    c.info(f"task {final.id} ({final.kind} {final.target}) succeeded")
