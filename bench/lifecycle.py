"""Create -> start -> first heartbeat: through Corral's API versus raw libvirt-python.

Both paths boot the same busybox kernel guest under TCG on a private libvirtd, and both detect
the heartbeat by polling the serial log at the same interval (Corral: ``GET /vms/X/log``; raw:
the log file virtlogd writes). Runs alternate between the two to cancel drift.

    .venv/bin/python bench/lifecycle.py [--runs 10] [--json]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import libvirt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import report

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import guest_domain_xml, serial_log_path
from corral.testbed.guest_images import KernelGuest, build_kernel_guest
from corral.testbed.private_libvirtd import PrivateLibvirtd
from corral.testbed.vm_specs import kernel_vm

REPO = Path(__file__).resolve().parents[1]
HEARTBEAT = re.compile(rb"corral-heartbeat \d+")
POLL_S = 0.05
TIMEOUT_S = 120


def _poll(read: Callable[[], bytes], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if HEARTBEAT.search(read()):
            return
        time.sleep(POLL_S)
    raise TimeoutError(f"no heartbeat from {what} within {TIMEOUT_S} s")


def run_raw(daemon: PrivateLibvirtd, guest: KernelGuest, name: str) -> float:
    conn = libvirt.open(daemon.uri)
    try:
        log = daemon.host_path(serial_log_path(name))
        log.unlink(missing_ok=True)
        started = time.perf_counter()
        dom = conn.defineXML(guest_domain_xml(name, guest))
        dom.create()
        _poll(lambda: log.read_bytes() if log.exists() else b"", name)
        elapsed = time.perf_counter() - started
        dom.destroy()
        dom.undefine()
        return elapsed
    finally:
        conn.close()


def run_corral(server: CorralServer, guest: KernelGuest, name: str) -> float:
    spec = kernel_vm(name, guest, disk_gib=None)
    with server.client() as client:
        started = time.perf_counter()
        client.post("/vms", json=spec).raise_for_status()
        client.post(f"/vms/{name}/start").raise_for_status()
        _poll(lambda: client.get(f"/vms/{name}/log").content, name)
        elapsed = time.perf_counter() - started
        client.post(f"/vms/{name}/stop").raise_for_status()
        client.delete(f"/vms/{name}", params={"delete_disks": "true"}).raise_for_status()
        return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    guest = build_kernel_guest(REPO / "build" / "guests")
    with (
        tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp,
        PrivateLibvirtd(Path(tmp) / "libvirtd") as daemon,
        CorralServer(
            Path(tmp) / "corral", daemon.uri, host_path_roots=[guest.kernel.parent]
        ) as server,
    ):
        # One warm-up each: the first domain start pays QEMU's capability probe.
        run_raw(daemon, guest, "warm-raw")
        run_corral(server, guest, "warm-corral")
        raw, corral = [], []
        for i in range(args.runs):
            raw.append(run_raw(daemon, guest, f"raw-{i}"))
            corral.append(run_corral(server, guest, f"corral-{i}"))
    rows: list[dict[str, object]] = [
        {"run": i + 1, "libvirt_s": r, "corral_s": c, "ratio": c / r}
        for i, (r, c) in enumerate(zip(raw, corral, strict=True))
    ]
    median_raw, median_corral = statistics.median(raw), statistics.median(corral)
    rows.append(
        {
            "run": "median",
            "libvirt_s": median_raw,
            "corral_s": median_corral,
            "ratio": median_corral / median_raw,
        }
    )
    report(
        "create -> start -> first heartbeat (TCG guest, private libvirtd)",
        rows,
        {
            "ratio_median": median_corral / median_raw,
            "libvirt_median_s": median_raw,
            "corral_median_s": median_corral,
        },
        json_mode=args.json,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
