"""`corral vm list` wall time against a running Corral, typed the way a user types it.

A `corral serve` on libvirt's test driver (its own data directory and port) gets `--vms` VMs;
then the `corral` console script (the one `make run` links into /usr/local/bin) runs `vm list`
in a new process `--runs` times, as a fresh shell would, after one run that warms the page
cache. Also timed: `corral --help` (nothing imported but the root group) and `virsh list`'s
equivalent cost, a bare `python -c pass`, for scale. Target (issue 16): `cli_list_s` <= 0.3.

    .venv/bin/python bench/cli.py [--vms 100] [--runs 10] [--corral PATH] [--json]

The runs' environment has no PYTHONDONTWRITEBYTECODE (a login shell has none): the unmeasured
run leaves the bytecode a user's first run leaves. `--corral` times another `corral` executable
(an older checkout's, to compare).

`cli_list_seconds(env)` is the measurement alone and `timed_run(argv, env)` one run's wall and
CPU time, for benchmarks that run their own server (bench/inventory.py): `env` holds
`CORRAL_URL`, and `CORRAL_TOKEN` or `CORRAL_CONFIG_DIR`.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import report

from corral.testbed.corral_server import CorralServer

VENV_BIN = Path(sys.executable).parent
CORRAL = VENV_BIN / "corral"


def timed_run(argv: Sequence[str], env: Mapping[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (user and system) of one process of ``argv``; a run that fails
    raises (a quick error is not a quick listing)."""
    clean = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(list(argv), env=clean, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return elapsed, cpu


def wall_times(argv: Sequence[str], env: Mapping[str, str], runs: int) -> list[float]:
    """Seconds each of ``runs`` fresh processes of ``argv`` took, after one unmeasured run."""
    timed_run(argv, env)
    return [timed_run(argv, env)[0] for _ in range(runs)]


def cli_list_seconds(env: Mapping[str, str], runs: int = 10, corral: Path = CORRAL) -> float:
    """Median wall time of ``corral vm list`` (the console script) against the server in
    ``env``'s ``CORRAL_URL``."""
    return statistics.median(wall_times([str(corral), "vm", "list"], {**os.environ, **env}, runs))


def _make_vms(server: CorralServer, count: int) -> None:
    with server.client() as client:
        for index in range(count):
            spec = {"name": f"bench-{index:05d}", "disks": [{"size_gib": 1}]}
            made = client.post("/vms", json=spec)
            if made.status_code >= 400:
                raise RuntimeError(f"creating VM {index}: {made.status_code} {made.text}")


def _row(what: str, times: list[float]) -> dict[str, object]:
    return {
        "command": what,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "max_s": max(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=100)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--corral", type=Path, default=CORRAL, help="the corral to time")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="corral-bench-cli-") as tmp:
        server = CorralServer(Path(tmp) / "corral", "test:///default", accelerator=None)
        with server:
            _make_vms(server, args.vms)
            env = {**os.environ, **server.env}
            rows = [
                _row(f"corral vm list ({args.vms} VMs)", wall_times(
                    [str(args.corral), "vm", "list"], env, args.runs)),
                _row("corral --help", wall_times([str(args.corral), "--help"], env, args.runs)),
                _row("python -c pass", wall_times([sys.executable, "-c", "pass"], env, args.runs)),
            ]  # fmt: skip
    load = os.getloadavg()[0]
    report(
        f"corral vm list, {args.runs} runs (load average {load:.1f} on {os.cpu_count()} CPUs)",
        rows,
        headline={"cli_list_s": float(rows[0]["median_s"])},  # type: ignore[arg-type]
        json_mode=args.json,
    )


if __name__ == "__main__":
    main()
