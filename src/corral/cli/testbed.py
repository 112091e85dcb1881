"""``corral testbed``: N libvirt hosts on this machine from namespaces, enrolled into Corral.

A local admin and demo tool like ``corral admin`` (it needs root and builds namespaces here),
not an API client only: it builds the hosts itself, then enrolls them through Corral's API
(``POST /host-enrollments``, over SSH to each host's own sshd), as the CLI is logged in.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import typer
from rich.console import Console

from corral.cli import credentials
from corral.cli.context import HelpGroup
from corral.config import Settings
from corral.errors import CorralError
from corral.model.common import is_name
from corral.testbed.enroll import enroll_all, remove_all
from corral.testbed.multihost import MultiHostTestbed
from corral.testbed.simulated_hosts import write_hosts
from corral.testbed.storage_server import StorageServer

app = typer.Typer(
    help="Several libvirt hosts on this machine (namespaces).",
    no_args_is_help=True,
    cls=HelpGroup,
    rich_markup_mode=None,
)
_out = Console()

DirOpt = typer.Option(
    Path("/var/lib/corral-testbed"), "--dir", help="Where the hosts keep their files."
)
SlotOpt = typer.Option(
    0, "--slot", min=0, max=99, help="Network 198.18.SLOT.0/24 (tests use 100-199)."
)


def _api() -> httpx.Client | None:
    """A client logged in as the CLI is (CORRAL_URL / CORRAL_TOKEN, else `corral login`)."""
    creds = credentials.load()
    url = os.environ.get("CORRAL_URL") or (creds.url if creds else None)
    token = os.environ.get("CORRAL_TOKEN") or (creds.token if creds else None)
    if not url or not token:
        return None
    return httpx.Client(
        base_url=f"{url.rstrip('/')}/api/v1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


@app.command("up")
def up(
    hosts: int = typer.Option(3, "--hosts", min=1, max=50, help="How many hosts."),
    directory: Path = DirOpt,
    slot: int = SlotOpt,
    enroll: bool = typer.Option(
        True, "--enroll/--no-enroll", help="Enroll them into Corral (needs `corral login`)."
    ),
    accelerator: str = typer.Option("tcg", "--accelerator", help="Accelerator for their VMs."),
    storage: bool = typer.Option(
        False, "--storage", help="Also an NFS and iSCSI storage server at 198.18.SLOT.200."
    ),
    lan: bool = typer.Option(
        False,
        "--lan",
        help="Also a second NIC per host (h1 ens4, h2 enp2s0, …) on a LAN Corral is not on.",
    ),
) -> None:
    """Build N hosts (h1…hN at 198.18.SLOT.1…) and enroll them; replaces a previous test bed
    of the same slot."""
    testbed = MultiHostTestbed(directory, hosts=hosts, slot=slot, lan=lan)
    client = _api() if enroll else None
    if enroll and client is None:
        _out.print("[red]error:[/] not logged in: `corral login` first, or --no-enroll")
        raise typer.Exit(1)
    try:
        if client is not None:
            remove_all(client, testbed)
        testbed.up()
        _out.print(
            f"{hosts} hosts up: "
            + ", ".join(
                f"{h.name} {h.address}" + (f" (LAN NIC {h.lan_nic})" if h.lan_nic else "")
                for h in testbed.hosts
            )
        )
        if storage:
            server = StorageServer.for_testbed(testbed)
            server.up()
            _out.print(f"storage server up: NFS {server.nfs_url()}, iSCSI {server.portal} "
                       f"target {server.iqn} LUNs 1-{len(server.lun_sizes_mib)}")  # fmt: skip
        if client is not None:
            enroll_all(client, testbed, accelerator)
            _out.print("enrolled over SSH; see `corral host list`")
    except (CorralError, httpx.HTTPError) as exc:
        _out.print(f"[red]error:[/] {getattr(exc, 'message', exc)}")
        raise typer.Exit(1) from None


@app.command("down")
def down(
    directory: Path = DirOpt,
    slot: int = SlotOpt,
    hosts: int = typer.Option(50, "--hosts", hidden=True),
) -> None:
    """Remove the test bed's hosts from Corral (with their VMs), then stop every process of
    the hosts and of its storage server and delete their namespaces, links and bridge."""
    testbed = MultiHostTestbed(directory, hosts=hosts, slot=slot)
    client = _api()
    if client is not None:
        try:
            removed = remove_all(client, testbed)
            if removed:
                _out.print("removed from Corral: " + ", ".join(removed))
        except (CorralError, httpx.HTTPError) as exc:
            _out.print(f"[yellow]warning:[/] could not remove the hosts from Corral: {exc}")
    StorageServer.for_testbed(testbed).down()
    testbed.down()
    _out.print(f"test bed of slot {slot} is down")


@app.command("simulate")
def simulate(
    hosts: int = typer.Option(20, "--hosts", min=1, max=5000, help="How many hosts."),
    vms: int = typer.Option(
        0, "--vms", min=0, max=200_000, help="Running VMs spread over them (Corral adopts them)."
    ),
    cpus: int = typer.Option(64, "--cpus", min=1, max=4096, help="CPUs of each host."),
    memory_gib: int = typer.Option(256, "--memory-gib", min=1, max=65536, help="Its memory."),
    prefix: str = typer.Option(
        "sim", "--prefix", help="Hosts PREFIX-0001…, VMs PREFIX-0001-vm0001…"
    ),
) -> None:
    """Add simulated hosts (libvirt's test driver) for scale tests; needs allow_test_hosts.

    A node description per host (its own host UUID, CPUs, memory, running VMs) in the
    server's simulated-hosts directory (as this machine's settings say), added through the
    API; Corral adopts their VMs at its next reconcile pass."""
    if not is_name(f"{prefix}-0001-vm0001"):
        _out.print(f"[red]error:[/] --prefix {prefix!r} does not make valid host names")
        raise typer.Exit(2)
    client = _api()
    if client is None:
        _out.print("[red]error:[/] not logged in: `corral login` first")
        raise typer.Exit(1)
    directory = Settings().simulated_hosts_dir
    made = write_hosts(
        directory, hosts, vms=vms, cpus=cpus, memory_mib=memory_gib * 1024, prefix=prefix
    )
    try:
        for host in made:
            answer = client.post("/hosts", json={"name": host.name, "uri": host.uri})
            if answer.status_code >= 400:
                detail = answer.json().get("detail", answer.text)
                _out.print(f"[red]error:[/] adding {host.name}: {detail}")
                raise typer.Exit(1)
    except httpx.HTTPError as exc:
        _out.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    _out.print(f"{hosts} simulated hosts added ({made[0].name}…{made[-1].name}, {vms} VMs), "
               f"node descriptions in {directory}")  # fmt: skip
