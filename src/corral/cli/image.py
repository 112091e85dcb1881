"""``corral image …``: the image library (ISO, disk and kernel images in each host's pool or
in a shared storage domain)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from corral.cli import context as c
from corral.cli import pages
from corral.cli.client import CliError, parse, seg
from corral.cli.formats import human_bytes
from corral.cli.output import image_table
from corral.cli.task import JsonOpt
from corral.model.image import ImageInfo, ImageKind, ImageUploaded

app = typer.Typer(
    help="The image library: ISO, disk and kernel images in storage domains.",
    no_args_is_help=True,
    cls=c.HelpGroup,
)

NameArg = typer.Argument(..., metavar="NAME", help="The image's name.")
HostOpt = typer.Option(None, "--host", help="The host whose library is meant.")
DomainOpt = typer.Option(
    None, "--domain", metavar="DOMAIN", help="The storage domain whose images are meant."
)

#: Bytes read from the file and sent at a time.
CHUNK = 1024 * 1024


@app.command("list")
def list_images(
    ctx: typer.Context,
    host: str | None = HostOpt,
    domain: str | None = DomainOpt,
    json_out: bool = JsonOpt,
) -> None:
    """List the images of every host and shared domain (or of one), with the VMs using
    them."""
    params = {"host": host, "domain": domain}
    listing = pages.fetch(c.client(ctx), "/images", params, limit=None, every=True, what="images")
    images = listing.parsed(ImageInfo)
    c.emit(ctx, json_out, listing.json(), lambda: c.out.print(image_table(images)))


@app.command("show")
def show(
    ctx: typer.Context,
    name: str = NameArg,
    host: str | None = HostOpt,
    domain: str | None = DomainOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Show one image."""
    response = c.client(ctx).get(f"/images/{seg(name)}", {"host": host, "domain": domain})
    image = parse(response, ImageInfo)
    c.emit(ctx, json_out, response.json(), lambda: c.out.print(image_table([image])))


def _chunks(path: Path, progress: Progress | None) -> Iterator[bytes]:
    """The file, read as it is sent; the bar counts what the server has taken."""
    size = path.stat().st_size
    bar = progress.add_task(f"uploading {path.name}", total=size) if progress else None
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk
            if progress is not None and bar is not None:
                progress.advance(bar, len(chunk))


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=c.err,
    )


@app.command("upload")
def upload(
    ctx: typer.Context,
    file: Path = typer.Argument(
        ..., metavar="FILE", exists=True, dir_okay=False, readable=True, help="The image file."
    ),
    name: str | None = typer.Option(None, "--name", help="The image's name (default: FILE's)."),
    host: str | None = typer.Option(
        None,
        "--host",
        help="Target host (default: the first); with --domain, the host the upload goes "
        "through (default: any reaching the domain).",
    ),
    domain: str | None = typer.Option(
        None,
        "--domain",
        metavar="DOMAIN",
        help="Target storage domain (default: local). An image of a shared domain serves "
        "every host reaching it.",
    ),
    kind: ImageKind | None = typer.Option(
        None,
        "--kind",
        help="iso (CD-ROM media), disk, or kernel (a kernel or initrd for --kernel/--initrd; "
        "default: iso or disk, what the file is).",
    ),
    json_out: bool = JsonOpt,
) -> None:
    """Upload an image into a host's pool or a storage domain, with a progress bar (bytes
    sent)."""
    image_name = name or file.name
    size = file.stat().st_size
    params = {"host": host, "domain": domain, "kind": kind.value if kind else None}
    client = c.client(ctx)
    path = f"/images/{seg(image_name)}"
    try:
        if c.want_json(ctx, json_out):
            response = client.put_stream(path, _chunks(file, None), size, params=params)
        else:
            with _progress() as progress:
                response = client.put_stream(path, _chunks(file, progress), size, params=params)
    except KeyboardInterrupt:
        raise CliError(
            f"upload of {file} interrupted: Corral keeps nothing of it", exit_code=130
        ) from None
    uploaded = parse(response, ImageUploaded)
    image = uploaded.image

    def render() -> None:
        where = f"host {image.host}" if image.host else f"storage domain {image.domain}"
        c.info(
            f"uploaded {image.kind} image {image.name} to {where} "
            f"({human_bytes(size)}, {image.format}; task {uploaded.task.id})"
        )

    c.emit(ctx, json_out, response.json(), render)


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: str = NameArg,
    host: str | None = HostOpt,
    domain: str | None = DomainOpt,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete an image no VM uses."""
    if not yes:
        typer.confirm(f"Delete image {name}?", abort=True, err=True)
    c.client(ctx).delete(f"/images/{seg(name)}", {"host": host, "domain": domain})
    c.info(f"deleted image {name}")
