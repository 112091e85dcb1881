"""``corral backup …`` (keys, stores, listings, verify, restore) and ``corral vm backup``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from corral.cli import context as c
from corral.cli.client import parse, parse_list, seg
from corral.cli.context import JsonOpt
from corral.cli.tables import when
from corral.cli.task import follow_task
from corral.model.backup import BackupInfo, BackupStoreInfo

app = typer.Typer(
    help="Backups: stores, keys, listings, verify and restore.", no_args_is_help=True,
    cls=c.HelpGroup,
)  # fmt: skip
key_app = typer.Typer(help="Backup encryption keys.", no_args_is_help=True, cls=c.HelpGroup)
store_app = typer.Typer(help="Backup stores.", no_args_is_help=True, cls=c.HelpGroup)
app.add_typer(key_app, name="key")
app.add_typer(store_app, name="store")
NoWaitOpt = typer.Option(False, "--no-wait", help="Print the task id and return at once.")
StoreOpt = typer.Option(..., "--store", metavar="STORE", help="The backup store.")


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


@key_app.command("new")
def key_new(path: Path = typer.Argument(..., metavar="FILE", help="Where to write it.")) -> None:
    """Make a new encryption key in FILE (mode 0600; never overwritten). Keep a copy
    somewhere safe: without it, the backups of a store it encrypts cannot be read."""
    from corral.backup.keys import write_key_file

    try:
        write_key_file(path)
    except FileExistsError:
        c.usage_error(f"{path} exists: a key file is never overwritten", "FILE")
    c.info(f"wrote a new backup key to {path}; keep a copy of it somewhere safe")


@store_app.command("add")
def store_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME"),
    path: str = typer.Option(..., "--path", help="An empty directory on Corral's machine."),
    key_file: Path | None = typer.Option(None, "--key-file", help="Encrypt with this key."),
    json_out: bool = JsonOpt,
) -> None:
    """Make a backup store (admins)."""
    body: dict[str, object] = {"name": name, "path": path}
    if key_file is not None:
        try:
            body["key"] = key_file.read_text().strip()
        except OSError as exc:
            c.usage_error(f"cannot read {key_file}: {exc}", "--key-file")
    response = c.client(ctx).post("/backup-stores", json=body)
    info = parse(response, BackupStoreInfo)
    how = "encrypted" if info.encrypted else "not encrypted"
    c.emit(ctx, json_out, response.json(), lambda: c.info(f"made backup store {name} at "
                                                          f"{info.path} ({how})"))  # fmt: skip


@store_app.command("list")
def store_list(ctx: typer.Context, json_out: bool = JsonOpt) -> None:
    """The backup stores, with their backups and what they take."""
    response = c.client(ctx).get("/backup-stores")
    found = parse_list(response, BackupStoreInfo)

    def render() -> None:
        table = Table("NAME", "PATH", "ENCRYPTED", "BACKUPS", "STORED", "OF DISKS", "PROBLEM",
                      box=None)  # fmt: skip
        for s in found:
            sizes = (_size(s.stored_bytes), _size(s.logical_bytes))
            crypt = "yes" if s.encrypted else "no"
            table.add_row(s.name, s.path, crypt, str(s.backups), *sizes, s.problem or "")
        c.out.print(table)

    c.emit(ctx, json_out, response.json(), render)


@store_app.command("remove")
def store_remove(ctx: typer.Context, name: str = typer.Argument(..., metavar="NAME")) -> None:
    """Corral forgets the store (its directory and backups stay)."""
    c.client(ctx).delete(f"/backup-stores/{seg(name)}")
    c.info(f"Corral forgot backup store {name}; its directory is untouched")


@app.command("list")
def list_backups(
    ctx: typer.Context,
    store: str = StoreOpt,
    vm: str | None = typer.Option(None, "--vm", help="Only this VM's."),
    json_out: bool = JsonOpt,
) -> None:
    """The backups in a store, oldest first."""
    response = c.client(ctx).get(f"/backup-stores/{seg(store)}/backups", params={"vm": vm})
    found = parse_list(response, BackupInfo)

    def render() -> None:
        table = Table("VM", "ID", "WHEN", "KIND", "SIZE", "READ", "NEW", "CONSISTENCY", box=None)
        for b in found:
            table.add_row(b.vm, b.id, when(b.created_at), b.kind.value, _size(b.size_bytes),
                          _size(b.bytes_read), _size(b.bytes_new), b.consistency.value)  # fmt: skip
        c.out.print(table)

    c.emit(ctx, json_out, response.json(), render)


@app.command("verify")
def verify(
    ctx: typer.Context, store: str = StoreOpt, no_wait: bool = NoWaitOpt,
    json_out: bool = JsonOpt,
) -> None:  # fmt: skip
    """Re-read and re-hash every chunk of every backup in the store."""
    response = c.client(ctx).post(f"/backup-stores/{seg(store)}/verify")
    task = follow_task(ctx, response, no_wait=no_wait, json_flag=json_out)
    if task is not None and task.result:
        r = task.result
        c.emit(ctx, json_out, r, lambda: c.info(
            f"backup store {store}: {r['backups']} backup(s), {r['chunks']} chunk(s), "
            f"{_size(int(r['bytes']))} re-read: all sound"))  # fmt: skip


@app.command("restore")
def restore(
    ctx: typer.Context,
    vm: str = typer.Argument(..., metavar="VM", help="The VM the backup is of."),
    backup: str = typer.Argument(..., metavar="BACKUP", help="The backup's id."),
    store: str = StoreOpt,
    name: str = typer.Option(..., "--name", help="The new VM's name."),
    host: str | None = typer.Option(None, "--host", help="Where to make it."),
    start: bool = typer.Option(False, "--start", help="Start it once made."),
    no_wait: bool = NoWaitOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Make a new VM from a backup (every chunk is checked first)."""
    body = {"name": name, "host": host, "start": start}
    path = f"/backup-stores/{seg(store)}/backups/{seg(vm)}/{seg(backup)}/restore"
    response = c.client(ctx).post(path, json={k: v for k, v in body.items() if v is not None})
    if follow_task(ctx, response, no_wait=no_wait, json_flag=json_out) is not None:
        c.info(f"restored backup {backup} of VM {vm} as VM {name}")


def vm_backup(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", help="The VM."),
    store: str = StoreOpt,
    full: bool = typer.Option(False, "--full", help="Full even when it could be incremental."),
    no_wait: bool = NoWaitOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Back a VM up into a store: full the first time, then only what changed."""
    body = {"store": store, "full": full}
    response = c.client(ctx).post(f"/vms/{seg(name)}/backups", json=body)
    task = follow_task(ctx, response, no_wait=no_wait, json_flag=json_out)
    if task is not None and task.result:
        b = BackupInfo.model_validate(task.result)
        why = f" ({b.why_full})" if b.why_full else ""
        c.emit(ctx, json_out, task.result, lambda: c.info(
            f"backup {b.id} of VM {name}: {b.kind.value}{why}, {b.consistency.value}, read "
            f"{_size(b.bytes_read)}, {_size(b.bytes_new)} new in store {store}"))  # fmt: skip


@app.command("prune")
def prune(
    ctx: typer.Context,
    store: str = StoreOpt,
    vm: str | None = typer.Option(None, "--vm", help="Only this VM's backups."),
    keep_last: int | None = typer.Option(None, "--keep-last", min=1, help="The newest N."),
    keep_daily: int | None = typer.Option(
        None, "--keep-daily", min=1, help="The newest of each of the last N days with backups."
    ),
    keep_weekly: int | None = typer.Option(
        None, "--keep-weekly", min=1, help="The newest of each of the last N ISO weeks."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would go; delete nothing."),
    json_out: bool = JsonOpt,
) -> None:
    """Delete the backups the retention does not keep (per VM), then unused chunks."""
    body = {"vm": vm, "keep_last": keep_last, "keep_daily": keep_daily,
            "keep_weekly": keep_weekly, "dry_run": dry_run}  # fmt: skip
    response = c.client(ctx).post(
        f"/backup-stores/{seg(store)}/prune", json={k: v for k, v in body.items() if v is not None}
    )
    r = response.json()

    def render() -> None:
        verb = "would delete" if r["dry_run"] else "deleted"
        c.info(f"backup store {store}: {verb} {len(r['removed'])} backup(s), kept {r['kept']}"
               + ("" if r["dry_run"] else f", freed {_size(int(r['bytes_freed']))}"))  # fmt: skip
        for gone in r["removed"]:
            c.out.print(f"  {gone}", markup=False)

    c.emit(ctx, json_out, r, render)
