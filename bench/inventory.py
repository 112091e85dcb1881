"""Costs against the size of the inventory: 500 simulated hosts with 100 VMs, then with 10,000.

Each size gets its own ``corral serve`` (libvirt's test driver, ``allow_test_hosts``): the
hosts come from ``corral testbed simulate`` (a node description per host with its running
domains, which Corral adopts), then the bench times ``vm create`` without ``--host`` (the
placement decision included), a page of the VM list, the whole list, ``corral vm list`` and
the server's memory. ``corral vm list`` is the console script a user runs (``.venv/bin/corral``,
a new process each time, as in bench/cli.py), timed ``CLI_RUNS`` times after one unmeasured
run: the median is the headline, the slowest run, the median CPU time of a run (what other
work on the machine does not change) and the server's CPU use meanwhile (cores busy: its
reconciler and samplers run all the time) are printed with it.

    .venv/bin/python bench/inventory.py [--hosts 500] [--vms 10000] [--small 100]
                                        [--corral PATH] [--compare PATH] [--json]

``--corral`` times another ``corral`` executable's ``vm list``; ``--compare`` times a second one
(an older checkout's) in turns with it, run for run (``compare_cli_list_s``).

Headline: ``create_ms_p50_10k_vs_100`` (target <= 1.5), ``list_page_p95_ms`` (a page of 100 at
the large size, target <= 100), ``list_all_s``, ``cli_list_s`` (median, target <= 0.3) and
``cli_list_max_s``, ``rss_mb``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import report
from cli import CORRAL, timed_run

from corral.testbed.corral_server import CorralServer

CREATES = 50
PAGES = 20
CLI_RUNS = 5
ADOPTION_TIMEOUT_S = 900


def _items(body: Any) -> tuple[list[Any], str | None]:
    """A page of the VM list: its items and the cursor of the next page."""
    return list(body["items"]), body["next_cursor"]


def _count(client: httpx.Client) -> int:
    return int(client.get("/vms/summary").raise_for_status().json()["total"])


def _list_all(client: httpx.Client) -> list[Any]:
    items, cursor = _items(client.get("/vms", params={"limit": 1000}).raise_for_status().json())
    while cursor:
        more, cursor = _items(
            client.get("/vms", params={"limit": 1000, "cursor": cursor}).raise_for_status().json()
        )
        items += more
    return items


def _wait_adopted(client: httpx.Client, expected: int) -> float:
    started = time.monotonic()
    while time.monotonic() - started < ADOPTION_TIMEOUT_S:
        if _count(client) >= expected:
            return time.monotonic() - started
        time.sleep(10)  # each count lists every VM: not too often
    raise TimeoutError(f"fewer than {expected} VMs after {ADOPTION_TIMEOUT_S} s")


def _create_ms(client: httpx.Client, prefix: str) -> list[float]:
    times = []
    for i in range(CREATES):
        spec = {"name": f"{prefix}{i}", "vcpus": 1, "memory_mib": 256, "disks": [{"size_gib": 1}]}
        started = time.perf_counter()
        client.post("/vms", json=spec).raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _cpu_s(pid: int) -> float:
    """CPU seconds ``pid`` has used (user and system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cli_list(server: CorralServer, corral: Path, compare: Path | None) -> dict[str, float]:
    """``corral vm list`` (the first page) timed as a user runs it, and the server meanwhile;
    with ``compare``, that ``corral`` too, the runs taking turns (same moments, same load)."""
    commands = {"cli_list": corral, **({"compare_cli_list": compare} if compare else {})}
    argvs = {name: [str(path), "vm", "list"] for name, path in commands.items()}
    for argv in argvs.values():
        timed_run(argv, server.env)  # unmeasured: the page cache, bytecode
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in argvs}
    cpu, started = _cpu_s(server.pid), time.monotonic()
    for _ in range(CLI_RUNS):
        for name, argv in argvs.items():
            runs[name].append(timed_run(argv, server.env))
    row = {
        "server_cores_during_cli": (_cpu_s(server.pid) - cpu) / (time.monotonic() - started),
        "load_during_cli": os.getloadavg()[0],
    }
    for name, timed in runs.items():
        row[f"{name}_s"] = statistics.median(wall for wall, _ in timed)
        row[f"{name}_max_s"] = max(wall for wall, _ in timed)
        row[f"{name}_cpu_s"] = statistics.median(cpu for _, cpu in timed)
    return row


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(
    base: Path,
    hosts: int,
    vms: int,
    *,
    lists: bool,
    corral: Path = CORRAL,
    compare: Path | None = None,
) -> dict[str, Any]:
    server = CorralServer(
        base,
        "test:///default",
        accelerator=None,
        # The default reconcile interval (30 s): hosts added through the API are reconciled
        # (their domains adopted) by the next pass, and each pass reads every host.
        extra_env={"CORRAL_ALLOW_TEST_HOSTS": "true"},
    )
    with server:
        try:
            return _measure(server, hosts, vms, lists=lists, corral=corral, compare=compare)
        except (httpx.HTTPError, RuntimeError, TimeoutError):
            print(server.log_tail(8000), file=sys.stderr)
            raise


def _measure(
    server: CorralServer, hosts: int, vms: int, *, lists: bool, corral: Path, compare: Path | None
) -> dict[str, Any]:
    started = time.monotonic()
    made = server.cli("testbed", "simulate", "--hosts", str(hosts), "--vms", str(vms),
                      timeout=1800)  # fmt: skip
    if made.returncode != 0:
        raise RuntimeError(f"corral testbed simulate failed:\n{made.stdout}{made.stderr}")
    hosts_s = time.monotonic() - started
    with server.client() as client:
        client.timeout = httpx.Timeout(300)
        adopted_s = _wait_adopted(client, vms)
        creates = _create_ms(client, "bench")
        row: dict[str, Any] = {
            "hosts": hosts,
            "vms": vms,
            "add_hosts_s": hosts_s,
            "adopt_s": adopted_s,
            "create_ms_p50": statistics.median(creates),
            "create_ms_max": max(creates),
        }
        if lists:
            pages = []
            for _ in range(PAGES):
                t = time.perf_counter()
                client.get("/vms", params={"limit": 100}).raise_for_status()
                pages.append((time.perf_counter() - t) * 1000)
            row["list_page_p95_ms"] = statistics.quantiles(pages, n=20)[-1]
            t = time.perf_counter()
            row["listed"] = len(_list_all(client))
            row["list_all_s"] = time.perf_counter() - t
            row.update(_cli_list(server, corral, compare))
        row["rss_mb"] = _rss_mb(server.pid)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--vms", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--corral", type=Path, default=CORRAL, help="the corral to time")
    parser.add_argument("--compare", type=Path, help="another corral, timed in turns with it")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="corral-inventory-") as tmp:
        small = measure(Path(tmp) / "small", args.hosts, args.small, lists=False)
        large = measure(Path(tmp) / "large", args.hosts, args.vms, lists=True,
                        corral=args.corral, compare=args.compare)  # fmt: skip
    headline = {
        "create_ms_p50_10k_vs_100": large["create_ms_p50"] / small["create_ms_p50"],
        "list_page_p95_ms": large["list_page_p95_ms"],
        "list_all_s": large["list_all_s"],
        "cli_list_s": large["cli_list_s"],
        "cli_list_max_s": large["cli_list_max_s"],
        "cli_list_cpu_s": large["cli_list_cpu_s"],
        "rss_mb": large["rss_mb"],
    }
    if args.compare:
        headline["compare_cli_list_s"] = large["compare_cli_list_s"]
        headline["compare_cli_list_cpu_s"] = large["compare_cli_list_cpu_s"]
    report(f"Inventory: {args.hosts} simulated hosts, {args.small} vs {args.vms} VMs",
           [small, large], headline, json_mode=args.json)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
