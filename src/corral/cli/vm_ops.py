"""``corral vm show|start|stop|reboot|pause|resume|cdrom|shutdown|delete|clone|screenshot|log``:
inspect and operate one VM (``vm.py`` registers them; they load on first use)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import typer
from pydantic import ValidationError

from corral.cli import context as c
from corral.cli.client import ApiError, BadAnswer, CorralClient, parse, seg
from corral.cli.output import disk_table, nic_table, vm_details
from corral.cli.task import JsonOpt, follow_task
from corral.cli.units import validation_message
from corral.model.vm import CloneRequest, ShutdownRequest, VmInfo

app = typer.Typer(help="Operate one VM.", no_args_is_help=True, cls=c.HelpGroup)

NameArg = typer.Argument(..., metavar="NAME", help="The VM's name.")
NoWaitOpt = typer.Option(False, "--no-wait", help="Print the task id and return at once.")

#: How often ``vm log --follow`` asks for new output.
LOG_POLL_S = 0.5


@app.command("show")
def show(ctx: typer.Context, name: str = NameArg, json_out: bool = JsonOpt) -> None:
    """Show one VM, its disks and network interfaces (and what changes at its next start)."""
    response = c.client(ctx).get(f"/vms/{seg(name)}")
    vm = parse(response, VmInfo)

    def render() -> None:
        c.out.print(vm_details(vm))
        if vm.disks:
            c.out.print()
            c.out.print(disk_table(vm))
        if vm.nics:
            c.out.print()
            c.out.print(nic_table(vm))

    c.emit(ctx, json_out, response.json(), render)


def _power_command(action: str, done: str, doc: str) -> Callable[..., None]:
    def command(ctx: typer.Context, name: str = NameArg, json_out: bool = JsonOpt) -> None:
        response = c.client(ctx).post(f"/vms/{seg(name)}/{action}")
        vm = parse(response, VmInfo)
        c.emit(ctx, json_out, response.json(), lambda: c.info(f"{done} VM {vm.name} ({vm.state})"))

    command.__doc__ = doc
    command.__name__ = action
    return command


for _action, _done, _doc in (
    ("start", "started", "Start a shut-off VM."),
    ("stop", "stopped", "Force a VM off at once (like pulling the plug); see also `shutdown`."),
    ("reboot", "rebooted", "Ask the guest to reboot."),
    ("pause", "paused", "Pause a running VM (its vCPUs stop; memory stays)."),
    ("resume", "resumed", "Resume a paused VM."),
):
    app.command(_action)(_power_command(_action, _done, _doc))


@app.command("cdrom")
def cdrom(
    ctx: typer.Context,
    name: str = NameArg,
    insert: str | None = typer.Option(
        None, "--insert", metavar="IMAGE", help="An ISO image of the VM's host to insert."
    ),
    eject: bool = typer.Option(False, "--eject", help="Eject the media."),
    json_out: bool = JsonOpt,
) -> None:
    """Change the CD-ROM media of a running or shut-off VM (a shut-off VM without a CD-ROM
    drive gets one)."""
    if (insert is None) == (not eject):
        c.usage_error("give either --insert IMAGE or --eject")
    body = {"image": insert} if insert is not None else {"eject": True}
    response = c.client(ctx).post(f"/vms/{seg(name)}/cdrom", json=body)
    vm = parse(response, VmInfo)
    done = f"inserted {insert} into" if insert else "ejected the CD-ROM of"
    c.emit(ctx, json_out, response.json(), lambda: c.info(f"{done} VM {vm.name}"))


@app.command("shutdown")
def shutdown(
    ctx: typer.Context,
    name: str = NameArg,
    timeout: float = typer.Option(
        60.0, "--timeout", min=0.1, max=3600, help="Seconds to wait for the guest to power off."
    ),
    force: bool = typer.Option(False, "--force", help="Force it off if the guest does not obey."),
    no_wait: bool = NoWaitOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Shut a VM down gracefully (ACPI); fails after --timeout unless --force."""
    body = ShutdownRequest(timeout_s=timeout, force=force).model_dump(mode="json")
    response = c.client(ctx).post(f"/vms/{seg(name)}/shutdown", json=body)
    task = follow_task(ctx, response, no_wait=no_wait, json_flag=json_out)
    if task is not None:
        c.emit(ctx, json_out, task.model_dump(mode="json"), lambda: c.info(f"shut down VM {name}"))


#: What to do with the disks ``vm delete`` keeps (they are volumes of the host's pool).
KEPT_DISKS_HINT = (
    "delete them with `corral volume delete HOST VOLUME` (admins), or reuse one: "
    "`corral vm disk attach VM DISK --volume VOLUME`"
)


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: str = NameArg,
    delete_disks: bool = typer.Option(
        False, "--delete-disks", help="Also delete the VM's disk images (cannot be undone)."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a shut-off VM (its disks too with --delete-disks)."""
    if not yes:
        what = f"VM {name} and its disks" if delete_disks else f"VM {name} (disks are kept)"
        typer.confirm(f"Delete {what}?", abort=True, err=True)
    params = {"delete_disks": "true"} if delete_disks else None
    response = c.client(ctx).delete(f"/vms/{seg(name)}", params)
    c.info(f"deleted VM {name}" + (" and its disks" if delete_disks else ""))
    for note in filter(None, response.headers.get("Corral-Notes", "").split("; ")):
        c.info(note + ("" if delete_disks else f" ({KEPT_DISKS_HINT})"))


@app.command("clone")
def clone(
    ctx: typer.Context,
    source: str = typer.Argument(..., metavar="SRC", help="A shut-off VM to clone."),
    new_name: str = typer.Argument(..., metavar="NEW", help="The new VM's name."),
    description: str | None = typer.Option(None, "--description", help="The new VM's text."),
    no_wait: bool = NoWaitOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Make NEW a linked clone of the shut-off VM SRC."""
    try:
        body = CloneRequest(name=new_name, description=description).model_dump(mode="json")
    except ValidationError as exc:
        c.usage_error(validation_message(exc), "NEW")
    response = c.client(ctx).post(f"/vms/{seg(source)}/clone", json=body)
    task = follow_task(ctx, response, no_wait=no_wait, json_flag=json_out)
    if task is not None:
        c.emit(
            ctx,
            json_out,
            task.model_dump(mode="json"),
            lambda: c.info(f"cloned VM {source} as {new_name}"),
        )


@app.command("screenshot")
def screenshot(
    ctx: typer.Context,
    name: str = NameArg,
    output: Path | None = typer.Option(
        None, "--output", "-o", help="PNG file to write (default NAME.png; '-' for stdout)."
    ),
) -> None:
    """Save a PNG screenshot of the VM's display."""
    response = c.client(ctx).get(f"/vms/{seg(name)}/screenshot")
    data = response.content
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise BadAnswer(f"the screenshot of {name} is not a PNG image")
    if output is not None and str(output) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    target = output or Path(f"{name}.png")
    target.write_bytes(data)
    c.err.print(f"wrote {target} ({len(data)} bytes)", markup=False)


def _fetch_log(client: CorralClient, name: str, lines: int | None) -> bytes:
    return client.get(f"/vms/{seg(name)}/log", {"tail_lines": lines}).content


def _last_lines(data: bytes, lines: int) -> bytes:
    """The last ``lines`` lines of ``data`` (as the API's ``tail_lines`` counts them)."""
    end = len(data) - 1 if data.endswith(b"\n") else len(data)
    for _ in range(lines):
        end = data.rfind(b"\n", 0, end)
        if end < 0:
            return data
    return data[end + 1 :]


def _write(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.flush()


def follow_log(
    client: CorralClient,
    name: str,
    seen: int,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Print what the log gains, forever (until Ctrl-C).

    The contract has no offset parameter, so each poll reads the whole log and prints what lies
    past the length already seen; a shorter log means it was restarted: print it from the top.
    """
    while True:
        sleep(LOG_POLL_S)
        log = _fetch_log(client, name, None)
        if len(log) < seen:
            seen = 0
        if len(log) > seen:
            _write(log[seen:])
            seen = len(log)


@app.command("log")
def log(
    ctx: typer.Context,
    name: str = NameArg,
    tail: int | None = typer.Option(
        None, "--tail", min=1, metavar="LINES", help="Only the last LINES lines."
    ),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new output."),
) -> None:
    """Print the VM's serial console log."""
    client = c.client(ctx)
    if not follow:
        _write(_fetch_log(client, name, tail))
        return
    # Follow needs the whole log's length to know where new output starts.
    whole = _fetch_log(client, name, None)
    _write(_last_lines(whole, tail) if tail else whole)
    try:
        follow_log(client, name, len(whole))
    except KeyboardInterrupt:
        return
    except ApiError as exc:
        if exc.status == 404:
            raise ApiError(404, f"VM {name} is gone: {exc.detail}") from None
        raise
