"""``corral storage-domain …``: where volumes live, and which hosts reach each place."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from corral.cli import context as c
from corral.cli import pages
from corral.cli.client import parse, seg
from corral.cli.formats import human_bytes
from corral.cli.tables import when
from corral.cli.task import JsonOpt
from corral.model.storage_domain import ReachState, StorageDomainInfo

app = typer.Typer(
    help="Storage domains: places for volumes and which hosts reach them.",
    no_args_is_help=True,
    cls=c.HelpGroup,
)

NameArg = typer.Argument(..., metavar="NAME", help="The storage domain's name.")
_STATE_STYLE = {ReachState.REACHABLE: "green", ReachState.UNREACHABLE: "red"}


def _size(value: int | None) -> str:
    return "-" if value is None else human_bytes(value)


def _reach_summary(domain: StorageDomainInfo) -> str:
    reached = [h.host for h in domain.hosts if h.state is ReachState.REACHABLE]
    return f"{len(reached)}/{len(domain.hosts)}: {', '.join(reached) or 'none'}"


def domain_table(domains: Iterable[StorageDomainInfo]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("NAME", "KIND", "WHERE", "SIZE", "FREE", "HOSTS REACHING"):
        table.add_column(column, overflow="fold")
    for d in domains:
        where = ", ".join(f"{k}={v}" for k, v in d.settings.items()) or "each host's pool"
        cells = (d.name, d.kind.value, where, _size(d.capacity_bytes), _size(d.free_bytes),
                 _reach_summary(d))  # fmt: skip
        table.add_row(*(Text(cell) for cell in cells))
    return table


def reach_table(domain: StorageDomainInfo) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("HOST", "REACH", "CHECKED", "SIZE", "FREE", "REASON"):
        table.add_column(column, overflow="fold")
    for h in domain.hosts:
        state = Text(h.state.value, style=_STATE_STYLE.get(h.state, ""))
        table.add_row(Text(h.host), state, Text(when(h.checked_at)),
                      Text(_size(h.capacity_bytes)), Text(_size(h.free_bytes)),
                      Text(h.reason or ""))  # fmt: skip
    return table


def operations_table(domain: StorageDomainInfo) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("OPERATION", "SUPPORTED", "WHY NOT"):
        table.add_column(column, overflow="fold")
    for op in domain.operations:
        table.add_row(Text(op.operation.value), Text("yes" if op.supported else "no"),
                      Text(op.reason or ""))  # fmt: skip
    return table


def _render(domain: StorageDomainInfo) -> None:
    c.out.print(f"{domain.name} ({domain.kind.value}{', built in' if domain.builtin else ''})")
    for key, value in domain.settings.items():
        c.out.print(Text(f"{key}: {value}"))
    c.out.print()
    c.out.print(reach_table(domain))
    c.out.print()
    c.out.print(operations_table(domain))
    kinds = ", ".join(k.value for k in domain.image_kinds) or "none"
    c.out.print(Text(f"images kept: {kinds}"))


@app.command("list")
def list_domains(ctx: typer.Context, json_out: bool = JsonOpt) -> None:
    """List storage domains, their size and the hosts reaching each."""
    client = c.client(ctx)
    listing = pages.fetch(client, "/storage-domains", {}, limit=None, every=True, what="domains")
    domains = listing.parsed(StorageDomainInfo)
    c.emit(ctx, json_out, listing.json(), lambda: c.out.print(domain_table(domains)))


@app.command("show")
def show(ctx: typer.Context, name: str = NameArg, json_out: bool = JsonOpt) -> None:
    """Show a domain: each host's reach (and why not) and what its volumes support."""
    response = c.client(ctx).get(f"/storage-domains/{seg(name)}")
    domain = parse(response, StorageDomainInfo)
    c.emit(ctx, json_out, response.json(), lambda: _render(domain))


def _create_body(name: str, kind: str, options: dict[str, str | None]) -> dict[str, Any]:
    wanted = {
        "shared-dir": ("path",),
        "nfs": ("server", "export"),
        "iscsi": ("portal", "target"),
    }.get(kind)
    if wanted is None:
        c.usage_error(f"unknown kind {kind!r}: use shared-dir, nfs or iscsi", "--kind")
    body: dict[str, Any] = {"kind": kind, "name": name}
    for key in wanted:
        if options.get(key) is None:
            c.usage_error(f"kind {kind} needs --{key}", f"--{key}")
        body[key] = options[key]
    extra = [f"--{k}" for k, v in options.items() if v is not None and k not in wanted]
    if extra:
        c.usage_error(f"kind {kind} takes no {', '.join(extra)}", extra[0])
    return body


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = NameArg,
    kind: str = typer.Option(..., "--kind", help="shared-dir, nfs or iscsi."),
    path: str | None = typer.Option(None, "--path", help="shared-dir: the mounted directory."),
    server: str | None = typer.Option(None, "--server", help="nfs: the NFS server."),
    export: str | None = typer.Option(None, "--export", help="nfs: the exported directory."),
    portal: str | None = typer.Option(None, "--portal", help="iscsi: HOST[:PORT] of the portal."),
    target: str | None = typer.Option(None, "--target", help="iscsi: the target's IQN."),
    json_out: bool = JsonOpt,
) -> None:
    """Create a storage domain (admins) and check every host's reach.

    Refused, with each host's reason, when no host reaches it. A shared-dir must
    be the same filesystem on each host: a host where it is not is marked
    unreachable."""
    options = {"path": path, "server": server, "export": export, "portal": portal,
               "target": target}  # fmt: skip
    response = c.client(ctx).post("/storage-domains", _create_body(name, kind, options))
    domain = parse(response, StorageDomainInfo)
    c.emit(ctx, json_out, response.json(), lambda: _render(domain))


@app.command("check")
def check(ctx: typer.Context, name: str = NameArg, json_out: bool = JsonOpt) -> None:
    """Check every connected host's reach of a domain again (admins)."""
    response = c.client(ctx).post(f"/storage-domains/{seg(name)}/check")
    domain = parse(response, StorageDomainInfo)
    c.emit(ctx, json_out, response.json(), lambda: _render(domain))


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: str = NameArg,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a storage domain (admins); its files stay where they are.

    Refused while a VM has a disk on it, and for the built-in local domain."""
    if not yes:
        typer.confirm(f"Delete storage domain {name}?", abort=True, err=True)
    c.client(ctx).delete(f"/storage-domains/{seg(name)}")
    c.info(f"deleted storage domain {name}")
