"""VMs from templates: a linked clone to "defined", and a cloud-init guest's boot.

One ``corral serve`` on a private libvirtd. ``linked_clone_s_p50``: a template of the busybox
kernel guest's VM (one 1 GiB qcow2 disk), then ``--runs`` VMs made from it, linked, each timed
from ``POST /templates/T/vms`` to its task's success (the VM defined, its overlay made; target
<= 1 s). ``boot_to_ssh_s_p50`` (informative, TCG): a template of the cloud-init guest's disk,
then ``--boots`` VMs from it with a seed (hostname, a user with an SSH key), each timed from
the request to sshd's host key lines on the serial console, printed by cloud-init once sshd
has its key: the manager cannot reach the guest's user-mode NIC, so SSH itself is not dialled.

    .venv/bin/python bench/templates.py [--runs 20] [--boots 2] [--json]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import report

from corral.testbed.cloud_guest import build_cloud_guest
from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_images import build_kernel_guest
from corral.testbed.private_libvirtd import PrivateLibvirtd
from corral.testbed.vm_specs import kernel_vm

REPO = Path(__file__).resolve().parents[1]
GUESTS = REPO / "build" / "guests"
#: cloud-init prints the host keys' fingerprints to the console when sshd has its keys.
SSH_READY = re.compile(rb"BEGIN SSH HOST KEY FINGERPRINTS")


def _task(client: httpx.Client, answer: httpx.Response, timeout: float = 300) -> None:
    answer.raise_for_status()
    task_id = answer.json()["id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(f"/tasks/{task_id}").json()["state"]
        if state == "succeeded":
            return
        if state in ("failed", "cancelled"):
            raise RuntimeError(f"task {task_id} {state}")
        time.sleep(0.02)
    raise TimeoutError(f"task {task_id} still running after {timeout} s")


def _template(client: httpx.Client, name: str, spec: dict[str, Any]) -> None:
    answer = client.post("/vms", json=spec)
    if answer.status_code == 202:
        _task(client, answer)
    else:
        answer.raise_for_status()
    client.post("/templates", json={"name": name, "from_vm": spec["name"]}).raise_for_status()


def linked_clones(client: httpx.Client, runs: int) -> list[float]:
    _template(client, "bench-kernel", kernel_vm("bench-src", build_kernel_guest(GUESTS)))
    times = []
    for i in range(runs):
        started = time.perf_counter()
        _task(client, client.post("/templates/bench-kernel/vms", json={"name": f"lc-{i}"}))
        times.append(time.perf_counter() - started)
    return times


def cloud_boots(client: httpx.Client, boots: int) -> list[float]:
    guest = build_cloud_guest(GUESTS)
    spec = {
        "name": "bench-cloud-src",
        "vcpus": 1,
        "memory_mib": 512,
        "disks": [{"name": "root", "import_path": str(guest.disk)}],
        "nics": [{"network": "user"}],
        "boot": {"source": "disk"},
    }
    _template(client, "bench-cloud", spec)
    key = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    )
    times = []
    for i in range(boots):
        name = f"cb-{i}"
        body = {
            "name": name,
            "start": True,
            "cloud_init": {
                "hostname": name,
                "users": [{"name": "bench", "ssh_authorized_keys": [key.decode()]}],
            },
        }
        started = time.perf_counter()
        _task(client, client.post("/templates/bench-cloud/vms", json=body))
        deadline = started + 600
        while not SSH_READY.search(client.get(f"/vms/{name}/log").content):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}: sshd not ready after 600 s")
            time.sleep(0.5)
        times.append(time.perf_counter() - started)
        client.post(f"/vms/{name}/stop").raise_for_status()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--boots", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp,
        PrivateLibvirtd(Path(tmp) / "libvirtd") as daemon,
        CorralServer(Path(tmp) / "corral", daemon.uri, host_path_roots=[GUESTS]) as server,
        server.client() as client,
    ):
        clones = linked_clones(client, args.runs)
        boots = cloud_boots(client, args.boots) if args.boots else []
    rows: list[dict[str, object]] = [
        {"what": "linked clone to defined", "n": len(clones), "p50_s": statistics.median(clones),
         "max_s": max(clones)},
    ]  # fmt: skip
    headline = {"linked_clone_s_p50": statistics.median(clones)}
    if boots:
        rows.append({"what": "cloud-init boot to sshd ready", "n": len(boots),
                     "p50_s": statistics.median(boots), "max_s": max(boots)})  # fmt: skip
        headline["boot_to_ssh_s_p50"] = statistics.median(boots)
    report("VMs from templates (private libvirtd, TCG)", rows, headline, json_mode=args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
