"""Shared storage domains against local disks, through Corral, on the test bed.

One TCG guest with 1 GiB of RAM and a 2 GiB disk (raw, 2 GiB of incompressible data written by
the harness before the guest starts) on each of three storage domains in turn:

    local   the host's own pool (a file on h1)
    nfs     nfs-ganesha in the test bed's storage namespace, QEMU's own NFS client
    iscsi   a 2 GiB LUN of tgt in that namespace, QEMU's own iSCSI client (libiscsi)

and measures

    read            the guest's sequential read of its whole disk (``dd if=/dev/vda bs=1M
                    iflag=direct``, no guest page cache), MiB/s timed by the guest's clock
    migrate         live migration h1 -> h2 -> h1 (``--runs`` hops), seconds from the request to
                    the task's end: on ``nfs`` copying no disk (the domain is shared), on
                    ``local`` with ``--copy-storage`` (the disk crosses the wire too)

Headline: ``shared_vs_copy_time`` (nfs migration / local migration with copy, target <= 0.5),
``nfs_vs_local_read`` and ``iscsi_vs_local_read`` (informative).

    .venv/bin/python bench/storage.py [--runs 2] [--json]

Needs root (namespaces), nfs-ganesha and tgt (scripts/setup.sh) and the test guests
(``make test`` builds them).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect as ws_connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import report

from corral.testbed.corral_server import CorralServer
from corral.testbed.enroll import enroll_all, wait_task
from corral.testbed.guest_images import build_kernel_guest
from corral.testbed.multihost import MultiHostTestbed, allocate_slot
from corral.testbed.storage_server import EXPORT, StorageServer
from corral.testbed.vm_specs import kernel_vm

REPO = Path(__file__).resolve().parents[1]
GIB = 2**30
DISK = 2 * GIB
SEED = 64 * 2**20
TIMED = re.compile(rb"READ-FROM ([0-9.]+) TO ([0-9.]+) END")


def _check(answer: httpx.Response) -> Any:
    if answer.status_code >= 400:
        raise RuntimeError(f"{answer.request.method} {answer.request.url}: {answer.text}")
    return answer.json() if answer.content else None


def shell(server: CorralServer, vm: str, command: str, timeout: float = 600) -> bytes:
    """Run ``command`` on the guest's serial console (Corral's serial WebSocket)."""
    url = server.url.replace("http", "ws", 1) + f"/api/v1/vms/{vm}/serial"
    marker = b"BENCH-DONE-4242"
    seen = b""
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {server.token}"}
    with ws_connect(url, additional_headers=headers) as ws:
        ws.send(f"{command}; echo BENCH-DONE-$((4000 + 242))\n".encode())
        while marker not in seen:
            data = ws.recv(timeout=max(0.1, deadline - time.monotonic()))
            seen += data if isinstance(data, bytes) else data.encode()
    return seen


def fill(path: Path) -> None:
    """``path`` becomes DISK bytes of data: one random seed written over and over (no zeros
    for a copy to skip, nothing a sparse file could leave out)."""
    seed = os.urandom(SEED)
    with path.open("r+b" if path.exists() else "wb") as out:
        for offset in range(0, DISK, SEED):
            out.seek(offset)
            out.write(seed)
        out.truncate(DISK)
        os.fsync(out.fileno())


def setup(base: Path, slot: int) -> tuple[MultiHostTestbed, StorageServer, CorralServer]:
    bed = MultiHostTestbed(base / "bed", hosts=2, slot=slot)
    bed.up()
    storage = StorageServer.for_testbed(bed, lun_sizes_mib=(DISK // 2**20,))
    storage.up()
    server = CorralServer(
        base / "corral",
        "test:///default",
        extra_env={
            "CORRAL_RECONCILE_INTERVAL_S": "3600",
            "CORRAL_MIGRATION_TRANSPORTS": json.dumps(bed.migration_transport_options()),
        },
        host_path_roots=[(REPO / "build" / "guests").resolve()],
    )
    server.start()
    with server.client() as client:
        enroll_all(client, bed)
        nfs = {"kind": "nfs", "name": "nfs", "server": storage.address, "export": EXPORT}
        iscsi = {"kind": "iscsi", "name": "iscsi", "portal": storage.portal,
                 "target": storage.iqn}  # fmt: skip
        for body in (nfs, iscsi):
            _check(client.post("/storage-domains", json=body))
    return bed, storage, server


def make_vm(server: CorralServer, client: httpx.Client, kind: str, volume: str) -> str:
    vm = f"bench-st-{kind}"
    guest = build_kernel_guest(REPO / "build" / "guests")
    spec = kernel_vm(vm, guest, disk_gib=None, memory_mib=1024, host="h1")
    spec["disks"] = [{"name": "data", "volume": volume, "domain": kind}]
    _check(client.post("/vms", json=spec))
    _check(client.post(f"/vms/{vm}/start"))
    deadline = time.monotonic() + 180
    while b"CORRAL-GUEST-BOOTED" not in client.get(f"/vms/{vm}/log").content:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{vm} did not boot")
        time.sleep(0.5)
    return vm


def read_mib_s(server: CorralServer, vm: str) -> float:
    """The guest reads its whole disk once, past its page cache, timed by the guest's own
    clock (/proc/uptime, 10 ms; busybox dd prints no rate)."""
    count = DISK // 2**20
    out = shell(
        server,
        vm,
        "a=$(cut -d' ' -f1 /proc/uptime); "
        f"dd if=/dev/vda of=/dev/null bs=1M count={count} iflag=direct; "
        "b=$(cut -d' ' -f1 /proc/uptime); echo READ-FROM $a TO $b END",
    )
    found = TIMED.search(out)
    if found is None or f"{count}+0 records in".encode() not in out:
        raise RuntimeError(f"{vm}: dd failed: {out[-400:]!r}")
    seconds = float(found.group(2)) - float(found.group(1))
    return DISK / 2**20 / seconds


def migrate(client: httpx.Client, vm: str, to: str, body: dict[str, Any]) -> float:
    started = time.monotonic()
    task = _check(client.post(f"/vms/{vm}/migrate", json={"to": to, **body}))
    done = wait_task(client, task["id"], 900)
    if done["state"] != "succeeded":
        raise RuntimeError(f"migration of {vm} to {to} with {body}: {done['error']}")
    return time.monotonic() - started


def remove(client: httpx.Client, vm: str) -> None:
    client.post(f"/vms/{vm}/stop")
    client.delete(f"/vms/{vm}")  # the volumes stay (the harness made them)


def measure(
    server: CorralServer, bed: MultiHostTestbed, storage: StorageServer, runs: int
) -> dict[str, dict[str, Any]]:
    volumes = {
        "local": bed.host("h1").base / "lib" / "corral" / "images" / "bench-local.img",
        "nfs": storage.export_dir / "bench-nfs.img",
        "iscsi": storage.lun_file(1),
    }
    for path in volumes.values():
        fill(path)
    names = {"local": "bench-local.img", "nfs": "bench-nfs.img", "iscsi": "lun-1"}
    results: dict[str, dict[str, Any]] = {}
    with server.client() as client:
        for kind in ("local", "nfs", "iscsi"):
            vm = make_vm(server, client, kind, names[kind])
            figures: dict[str, Any] = {"read_MiB_s": read_mib_s(server, vm)}
            if kind != "iscsi":
                body = {"storage": "copy"} if kind == "local" else {}
                hops = [migrate(client, vm, ("h2", "h1")[i % 2], body) for i in range(runs)]
                figures["migrate_s"] = statistics.median(hops)
                figures["hops"] = hops
            remove(client, vm)
            results[kind] = figures
            print(f"{kind}: {figures}", file=sys.stderr, flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="migration hops per domain")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    slot, lock = allocate_slot()
    with tempfile.TemporaryDirectory(prefix="corral-bench-storage-") as tmp:
        bed, storage, server = setup(Path(tmp), slot)
        try:
            results = measure(server, bed, storage, args.runs)
        except BaseException:
            print(f"Corral's log:\n{server.log_tail(6000)}", file=sys.stderr)
            raise
        finally:
            server.stop()
            storage.down()
            bed.down()
            lock.close()
    local = results["local"]
    rows: list[dict[str, object]] = [
        {
            "domain": kind,
            "read_MiB_s": figures["read_MiB_s"],
            "read_vs_local": figures["read_MiB_s"] / local["read_MiB_s"],
            "migrate_s_p50": figures.get("migrate_s", "-"),
            "migration": {"local": "--copy-storage", "nfs": "shared (no copy)"}.get(kind, "-"),
        }
        for kind, figures in results.items()
    ]
    headline = {
        "shared_vs_copy_time": results["nfs"]["migrate_s"] / local["migrate_s"],
        "nfs_vs_local_read": results["nfs"]["read_MiB_s"] / local["read_MiB_s"],
        "iscsi_vs_local_read": results["iscsi"]["read_MiB_s"] / local["read_MiB_s"],
    }
    report(
        f"storage domains, 1 GiB TCG guest, 2 GiB disk, migration medians of {args.runs} hops",
        rows,
        headline,
        json_mode=args.json,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
