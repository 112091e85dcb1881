"""A guest with many vCPUs through Corral: boot time and the vCPUs the guest sees.

The suite boots a 16-vCPU x86_64 guest (2 sockets x 4 cores x 2 threads on q35); this runs the
long version: 1, 16 and 64 vCPUs (4 x 8 x 2), each created and started through Corral's API on
a private libvirtd under TCG, seconds from the start call to the first heartbeat on the serial
console, and what ``/sys/devices/system/cpu/online`` and ``/proc/cpuinfo`` say inside. On two
cores TCG runs vCPUs one after another, so boot time grows with the count: the figure to
watch is ``seen_all`` (1 when every guest saw every vCPU), the times are for comparison.

    .venv/bin/python bench/big_guest.py [--json]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _report import report

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_images import build_kernel_guest
from corral.testbed.private_libvirtd import PrivateLibvirtd
from corral.testbed.vm_specs import kernel_vm
from tests.integration.api._support import SerialShell

REPO = Path(__file__).resolve().parents[1]
HEARTBEAT = re.compile(rb"corral-heartbeat \d+")
SHAPES = {1: (1, 1, 1), 16: (2, 4, 2), 64: (4, 8, 2)}
TIMEOUT_S = 600


def boot(server: CorralServer, spec: dict[str, object]) -> tuple[float, int, bool]:
    name = str(spec["name"])
    with server.client() as client:
        client.post("/vms", json=spec).raise_for_status()
        started = time.monotonic()
        client.post(f"/vms/{name}/start").raise_for_status()
        deadline = started + TIMEOUT_S
        while not HEARTBEAT.search(client.get(f"/vms/{name}/log").content):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no heartbeat from {name} within {TIMEOUT_S} s")
            time.sleep(0.2)
        seconds = time.monotonic() - started
        out = SerialShell(server, name).run(
            "cat /sys/devices/system/cpu/online; grep -c ^processor /proc/cpuinfo", timeout=120
        )
        counted = re.findall(rb"^(\d+)\r?$", out, re.M)
        seen = int(counted[-1]) if counted else 0
        vcpus = int(str(spec["vcpus"]))
        online = f"0-{vcpus - 1}".encode() if vcpus > 1 else b"0"
        client.post(f"/vms/{name}/stop")
        client.delete(f"/vms/{name}", params={"delete_disks": "true"})
        return seconds, seen, seen == vcpus and online in out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    guest = build_kernel_guest(REPO / "build" / "guests")
    rows: list[dict[str, object]] = []
    with (
        tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp,
        PrivateLibvirtd(Path(tmp) / "libvirtd") as daemon,
        CorralServer(
            Path(tmp) / "corral", daemon.uri, host_path_roots=[guest.kernel.parent]
        ) as server,
    ):
        for vcpus, (sockets, cores, threads) in SHAPES.items():
            spec = kernel_vm(
                f"big-{vcpus}",
                guest,
                host="local",
                disk_gib=None,
                vcpus=vcpus,
                memory_mib=1024,
                machine="q35",
                cpu={"topology": {"sockets": sockets, "cores": cores, "threads": threads}},
            )
            seconds, seen, ok = boot(server, spec)
            rows.append({"vcpus": vcpus, "boot_s": seconds, "seen": seen, "all_seen": ok})
    report(
        "x86_64 guests with many vCPUs through Corral (TCG, q35, private libvirtd)",
        rows,
        {
            "seen_all": float(all(r["all_seen"] for r in rows)),
            "boot_64_vs_1": float(str(rows[-1]["boot_s"])) / float(str(rows[0]["boot_s"])),
        },
        json_mode=args.json,
    )
    return 0 if all(r["all_seen"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
