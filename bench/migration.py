"""Live migration cost by transport, through Corral, between two test-bed hosts.

One TCG guest (1 GiB RAM, ~640 MiB of data in tmpfs, a 64 MiB region rewritten continuously)
ping-pongs between h1 and h2 over each transport in turn (round-robin, so drift hits every
transport alike), ``--runs`` times:

    plain          transport insecure, no tuning (the cost floor; admin-enabled for the bench)
    default        what ``corral vm migrate NAME --to HOST`` does: TLS with Corral's tuning
                   (auto-converge starting at 30 %, +20 % a pass)
    tls            TLS, no tuning (``virsh migrate --tls``)
    tls+multifd4   TLS with 4 multifd channels, no tuning
    ssh            tunnelled over qemu+ssh, no tuning

Times and downtime are libvirt's own (the destination's completed job statistics, as
``virsh domjobinfo --completed``); throughput = bytes sent / total time. After each migration
the guest must keep its heartbeat (a damaged guest is reported and rebuilt: under TCG heavy
dirtying damages guests now and then on every transport, see docs/testbed.md).

    .venv/bin/python bench/migration.py [--runs 3] [--json]

Needs root (namespaces) and the test guests (``make test`` builds them).
"""

from __future__ import annotations

import argparse
import json
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
from corral.testbed.vm_specs import kernel_vm

REPO = Path(__file__).resolve().parents[1]
VM = "bench-mig"
HEARTBEAT = re.compile(rb"corral-heartbeat (\d+)")
DAMAGE = re.compile(rb"Oops|BUG:|Kernel panic|general protection|segfault")
RAW = {"auto_converge": False, "parallel_connections": 1}
MODES: dict[str, dict[str, Any]] = {
    "plain": {"transport": "insecure", **RAW},
    "default": {},
    "tls": {"transport": "tls", **RAW},
    "tls+multifd4": {"transport": "tls", **RAW, "parallel_connections": 4},
    "ssh": {"transport": "ssh", **RAW},
}
# In the guest (its /tmp tmpfs grown to hold it all): 64 MiB of random data, 8 copies of it
# (512 MiB), and a 64 MiB region that a background loop rewrites for ever: ~640 MiB.
PREPARE = (
    "mount -o remount,size=900m /tmp; "
    "dd if=/dev/urandom of=/tmp/seed bs=1M count=64 2>/dev/null; "
    "i=0; while [ $i -lt 8 ]; do cat /tmp/seed >>/tmp/fill; i=$((i+1)); done; "
    "cp /tmp/seed /tmp/hot; "
    "(while :; do dd if=/tmp/seed of=/tmp/hot bs=1M conv=notrunc 2>/dev/null; done) & "
    "sleep 1; du -sm /tmp"
)


def _check(answer: httpx.Response) -> Any:
    if answer.status_code >= 400:
        raise RuntimeError(f"{answer.request.method} {answer.request.url}: {answer.text}")
    return answer.json() if answer.content else None


def shell(server: CorralServer, command: str, timeout: float = 300) -> bytes:
    """Run ``command`` on the guest's serial console (Corral's serial WebSocket)."""
    url = server.url.replace("http", "ws", 1) + f"/api/v1/vms/{VM}/serial"
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


def heartbeat(client: httpx.Client) -> int:
    log = client.get(f"/vms/{VM}/log", params={"tail_bytes": 4096}).content
    numbers = [int(n) for n in HEARTBEAT.findall(log)]
    return numbers[-1] if numbers else 0


def serial_file(bed: MultiHostTestbed, host: str) -> Path:
    """The guest's serial log as virtlogd writes it on ``host`` (read directly: only what a
    migration appended counts, not what an earlier guest left there)."""
    return bed.host(host).base / "lib" / "corral" / "images" / f"{VM}.serial.log"


def log_size(bed: MultiHostTestbed, host: str) -> int:
    path = serial_file(bed, host)
    return path.stat().st_size if path.exists() else 0


def guest_alive(bed: MultiHostTestbed, host: str, offset: int, after: int) -> bool:
    """On ``host``, past ``offset`` of its log: the heartbeat goes on past ``after`` and the
    kernel logged nothing alarming."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        path = serial_file(bed, host)
        new = path.read_bytes()[offset:] if path.exists() else b""
        if DAMAGE.search(new):
            return False
        beats = [int(n) for n in HEARTBEAT.findall(new)]
        if beats and beats[-1] > after:
            return True
        time.sleep(0.5)
    return False


def make_guest(
    server: CorralServer, client: httpx.Client, bed: MultiHostTestbed, host: str
) -> None:
    guest = build_kernel_guest(REPO / "build" / "guests")
    client.post(f"/vms/{VM}/stop")
    client.delete(f"/vms/{VM}")
    for other in bed.hosts:
        serial_file(bed, other.name).unlink(missing_ok=True)
    _check(
        client.post("/vms", json=kernel_vm(VM, guest, disk_gib=None, memory_mib=1024, host=host))
    )
    _check(client.post(f"/vms/{VM}/start"))
    deadline = time.monotonic() + 120
    while b"CORRAL-GUEST-BOOTED" not in client.get(f"/vms/{VM}/log").content:
        if time.monotonic() > deadline:
            raise TimeoutError("the bench guest did not boot")
        time.sleep(0.5)
    shell(server, PREPARE)


def migrate(client: httpx.Client, to: str, body: dict[str, Any]) -> dict[str, Any]:
    task = _check(client.post(f"/vms/{VM}/migrate", json={"to": to, **body}))
    started = time.monotonic()
    done = wait_task(client, task["id"], 300)
    wall = time.monotonic() - started
    if done["state"] != "succeeded":
        raise RuntimeError(f"migration to {to} with {body}: {done['error']}")
    completed = done["result"]["migration"]["completed"] or {}
    total_ms = completed.get("time_elapsed_ms") or wall * 1000
    sent = completed.get("data_processed") or 0
    return {
        "total_s": total_ms / 1000,
        "downtime_ms": completed.get("downtime_ms"),
        "mib_s": sent / 2**20 / (total_ms / 1000) if total_ms else 0.0,
        "passes": completed.get("iteration"),
        "wall_s": wall,
    }


def setup(base: Path, slot: int) -> tuple[MultiHostTestbed, CorralServer]:
    bed = MultiHostTestbed(base / "bed", hosts=2, slot=slot)
    bed.up()
    server = CorralServer(
        base / "corral",
        "test:///default",
        extra_env={
            "CORRAL_RECONCILE_INTERVAL_S": "3600",
            "CORRAL_MIGRATION_TRANSPORTS": json.dumps(bed.migration_transport_options()),
        },
        host_path_roots=[REPO / "build" / "guests"],
    )
    server.start()
    with server.client() as client:
        enroll_all(client, bed)
        # The plain baseline: the cluster allows it and both hosts' configuration says so.
        _check(client.patch("/cluster/settings", json={"allow_insecure_migration": True}))
        for host in ("h1", "h2"):
            task = _check(client.post(f"/hosts/{host}/rotate-certs", json={}))
            if wait_task(client, task["id"])["state"] != "succeeded":
                raise RuntimeError(f"could not reconfigure {host}")
        for host in ("h1", "h2"):
            deadline = time.monotonic() + 30
            while _check(client.get(f"/hosts/{host}"))["status"] != "connected":
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{host} did not reconnect")
                time.sleep(0.3)
    return bed, server


def measure(
    server: CorralServer, bed: MultiHostTestbed, runs: int, modes: list[str]
) -> tuple[dict[str, list[dict[str, Any]]], int]:
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    damaged = 0
    with server.client() as client:
        make_guest(server, client, bed, "h1")
        here = "h1"
        for run in range(runs):
            for mode in modes:
                to = "h2" if here == "h1" else "h1"
                before, offset = heartbeat(client), log_size(bed, to)
                figures = migrate(client, to, MODES[mode])
                here = to
                figures["guest_ok"] = guest_alive(bed, to, offset, before)
                if not figures["guest_ok"]:
                    damaged += 1
                    make_guest(server, client, bed, here)
                results[mode].append(figures)
                print(f"run {run + 1} {mode}: {figures}", file=sys.stderr, flush=True)
    return results, damaged


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    slot, lock = allocate_slot()
    with tempfile.TemporaryDirectory(prefix="corral-bench-mig-") as tmp:
        bed, server = setup(Path(tmp), slot)
        try:
            results, damaged = measure(server, bed, args.runs, modes)
        except BaseException:
            print(f"Corral's log:\n{server.log_tail(6000)}", file=sys.stderr)
            raise
        finally:
            server.stop()
            bed.down()
            lock.close()
    med = {
        m: {k: statistics.median(r[k] for r in rs) for k in ("total_s", "downtime_ms", "mib_s")}
        for m, rs in results.items()
    }
    base = med.get("plain", {}).get("total_s")
    rows: list[dict[str, object]] = [
        {
            "transport": m,
            "total_s_p50": v["total_s"],
            "vs_plain": v["total_s"] / base if base else float("nan"),
            "downtime_ms_p50": v["downtime_ms"],
            "MiB_s_p50": v["mib_s"],
            "runs": len(results[m]),
            "guest_damaged": sum(1 for r in results[m] if not r["guest_ok"]),
        }
        for m, v in med.items()
    ]
    headline: dict[str, float] = {"guests_damaged": damaged}
    if base and "default" in med:
        headline["default_vs_plain_time"] = med["default"]["total_s"] / base
        headline["default_downtime_ms_p50"] = med["default"]["downtime_ms"]
    for m in ("tls", "tls+multifd4", "ssh"):
        if base and m in med:
            headline[f"{m}_vs_plain_time"] = med[m]["total_s"] / base
    report(
        f"live migration h1<->h2, 1 GiB TCG guest, 64 MiB rewritten, medians of {args.runs}",
        rows,
        headline,
        json_mode=args.json,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
