"""``corral vm type`` and ``corral vm wait-screen``: scripted console automation.

The manager does the VNC work (``POST /vms/{name}/console/type`` and ``…/wait-screen``); the
CLI only speaks HTTP. Both hold their request open while the server works (typing goes at the
pace QEMU accepts keys; ``wait-screen`` waits up to ``--timeout``), so they use a client whose
read timeout covers that.
"""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path

import typer
from pydantic import ValidationError

from corral.cli import context as c
from corral.cli.client import CliError, parse, seg
from corral.cli.task import JsonOpt
from corral.cli.units import validation_message
from corral.model.console import MAX_WAIT_S, ScreenMatch, TypeRequest, WaitScreenRequest

#: Extra seconds the HTTP request may take beyond ``--timeout`` (connecting to the screen).
SLACK_S = 30.0

#: Upper bound on the time typing one character takes (Shift down, key down, up, Shift up).
SECONDS_PER_CHAR = 0.05

NameArg = typer.Argument(..., metavar="NAME", help="The VM's name.")


def type_command(
    ctx: typer.Context,
    name: str = NameArg,
    text: str = typer.Argument(
        "",
        metavar="[TEXT]",
        help="Text to type (printable ASCII, US layout), exactly as given: no escapes.",
    ),
    keys: str | None = typer.Option(
        None,
        "--keys",
        metavar="COMBOS",
        help="Key combinations to press after TEXT, separated by spaces: "
        "'enter', 'ctrl-alt-delete', 'ctrl-u enter', 'f2'.",
    ),
) -> None:
    """Type TEXT on the VM's keyboard, then press --keys (e.g. `type web1 root --keys enter`)."""
    try:
        body = TypeRequest(text=text, keys=keys).model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        c.usage_error(validation_message(exc), "TEXT")
    # The server paces typing to QEMU's rate (see corral.services.vms.console_automation).
    client = dataclasses.replace(c.client(ctx), timeout=SLACK_S + SECONDS_PER_CHAR * len(text))
    with client:
        client.post(f"/vms/{seg(name)}/console/type", json=body)
    done = [f"typed {len(text)} characters"] if text else []
    if keys:
        done.append(f"pressed {keys}")
    c.info(f"{' and '.join(done)} on VM {name}")


def _read_image(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None


def wait_screen_command(
    ctx: typer.Context,
    name: str = NameArg,
    image: Path = typer.Option(
        ...,
        "--image",
        metavar="FILE.png",
        help="A PNG to look for, e.g. a region cropped from `corral vm screenshot`; every "
        "pixel must match.",
    ),
    timeout: float = typer.Option(
        30.0, "--timeout", min=0.1, max=MAX_WAIT_S, help="Seconds to wait for the image."
    ),
    json_out: bool = JsonOpt,
) -> None:
    """Wait until an image appears on the VM's screen; exit 1 if it does not within --timeout."""
    encoded = base64.b64encode(_read_image(image)).decode()
    try:
        request = WaitScreenRequest(image_png_base64=encoded, timeout_s=timeout)
    except ValidationError as exc:
        c.usage_error(validation_message(exc), "--image")
    client = dataclasses.replace(c.client(ctx), timeout=timeout + SLACK_S)
    with client, c.err.status(f"waiting up to {timeout:g} s for {image.name} on VM {name}…"):
        response = client.post(
            f"/vms/{seg(name)}/console/wait-screen", json=request.model_dump(mode="json")
        )
    found = parse(response, ScreenMatch)
    c.emit(
        ctx,
        json_out,
        response.json(),
        lambda: c.info(
            f"found {image.name} on VM {name} at x={found.x} y={found.y} "
            f"after {found.elapsed_s:.1f} s"
        ),
    )
