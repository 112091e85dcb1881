"""Active-active failover: three ``corral serve`` instances on one PostgreSQL database behind
HAProxy (the README's configuration, on loopback), the private libvirtd; ``kill -9`` of the
instance running tasks, ``--kills`` times (the victims take turns; a killed one is restarted
while the next round runs).

Each round starts ``--tasks`` tasks on the victim (as if the balancer had sent them there):
half graceful shutdowns of VMs that never answer the power button (no OS: forced when their
15 s are up, so they still run when the last import has begun), half creations importing a
4 GiB sparse image and asking to start (killed mid-import: the taker deletes what was made and
fails them). Once every task runs, the victim is killed; tasks are then polled through the
balancer.

- ``takeover_s_p50``: seconds from the kill until a task's ``owner`` names another instance
  (the claim), median over every task of every round (target <= 5; ``takeover_s_max`` too).
- ``tasks_lost``: tasks not finished 60 s after the kill, or whose end contradicts libvirt (a
  shutdown "succeeded" whose VM runs; a creation "failed" whose domain or volumes remain, or
  "succeeded" without its domain).
- ``tasks_run_twice``: work done twice, read from libvirt and the audit log, not from the tasks
  table. libvirt writes a ``starting up`` line to a domain's QEMU log for every QEMU it starts
  and a ``shutting down`` line for every stop: a round's shutdown VM must show exactly one more
  stop (and no start), an imported VM at most one start. The audit log holds an "ok" entry when
  a request is accepted and one when its work is done: more than two per operation and VM in a
  round is work done twice.

    .venv/bin/python bench/failover.py [--kills 10] [--tasks 20] [--json]

Needs the suite's PostgreSQL (``scripts/setup.sh --test``; ``CORRAL_TEST_POSTGRES_URL``) and
``haproxy``. About a minute per kill on two busy cores.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import libvirt
import psycopg
from psycopg import sql
from sqlalchemy import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import report

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.instances import Instances
from corral.testbed.private_libvirtd import PrivateLibvirtd
from corral.testbed.qemu_log import qemu_runs

REPO = Path(__file__).resolve().parents[1]
PG_URL = "postgresql+psycopg://corral:corral-test@127.0.0.1:5432/postgres"
FINISH_S = 60
SHUTDOWN_S = 15


def _items(data: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = data["items"] if isinstance(data, dict) else data
    return items


def deaf_vm(name: str) -> dict[str, Any]:
    """No OS: the firmware idles and nothing answers the power button."""
    return {
        "name": name,
        "host": "local",
        "vcpus": 1,
        "memory_mib": 32,
        "boot": {"source": "cdrom"},
        "cdrom_drive": True,
        "disks": [],
        "nics": [],
    }


class Bench:
    def __init__(self, cluster: Instances, daemon: PrivateLibvirtd, tasks: int) -> None:
        self.cluster = cluster
        self.daemon = daemon
        self.deaf = [f"fo-deaf{i}" for i in range(tasks // 2)]
        self.imports = tasks - len(self.deaf)
        self.image = cluster.servers[0].base_dir.parent / "big.raw"
        with self.image.open("wb") as handle:
            handle.truncate(4 * 1024**3)
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # lookups that miss
        self.conn = libvirt.open(daemon.uri)
        with cluster.client() as lb:
            for name in self.deaf:
                lb.post("/vms", json=deaf_vm(name)).raise_for_status()

    def log_runs(self, name: str) -> tuple[int, int]:
        return qemu_runs(self.daemon.host_path(f"/var/log/libvirt/qemu/{name}.log"))

    def prepare(self, lb: httpx.Client) -> None:
        for name in self.deaf:
            if lb.get(f"/vms/{name}").json()["state"] != "running":
                lb.post(f"/vms/{name}/start").raise_for_status()

    def start_tasks(self, victim: CorralServer, round_no: int) -> dict[str, tuple[str, str]]:
        """Task id -> (kind, VM)."""
        started: dict[str, tuple[str, str]] = {}
        with victim.client() as on_victim:
            for name in self.deaf:
                body = {"timeout_s": SHUTDOWN_S, "force": True}
                answer = on_victim.post(f"/vms/{name}/shutdown", json=body)
                assert answer.status_code == 202, answer.text
                started[answer.json()["id"]] = ("vm.shutdown", name)
            for i in range(self.imports):
                name = f"fo-r{round_no}-imp{i}"
                # On the one host by name: placement keeps vCPUs within the overcommit limit,
                # which this many running VMs on two CPUs exceed.
                spec = {"name": name, "host": "local", "memory_mib": 32, "nics": [], "start": True}
                spec["disks"] = [{"import_path": str(self.image)}]
                answer = on_victim.post("/vms", json=spec)
                assert answer.status_code == 202, answer.text
                started[answer.json()["id"]] = ("vm.create", name)
        return started

    def round(self, victim: CorralServer, round_no: int) -> dict[str, Any]:
        with self.cluster.client() as lb:
            self.prepare(lb)
            before = {name: self.log_runs(name) for name in self.deaf}
            audit_from = max((e["id"] for e in _items(lb.get("/audit").json())), default=0)
            tasks = self.start_tasks(victim, round_no)
            wait_until(lambda: self._all_running(lb, tasks), 120, "every task to run")
            owner = lb.get(f"/tasks/{next(iter(tasks))}").json()["owner"]
            # A live instance too busy to renew its leases in time loses its tasks to another
            # (fenced: it stops without writing); counted apart, not as taken over after a kill.
            early = {r["id"] for r in self._rows(lb) if r["id"] in tasks and r["owner"] != owner}
            victim.kill()
            killed = time.monotonic()
            taken, rows = self._follow(lb, tasks, owner, killed)
            for task_id in early:
                taken.pop(task_id, None)
            audit = [e for e in _items(lb.get("/audit", params={"limit": 1000}).json())]
            done = Counter(
                (e["action"], e["target"])
                for e in audit
                if e["id"] > audit_from and e["outcome"] == "ok"
            )
            lost = self._lost(rows, tasks)
            twice = self._twice(tasks, before, done)
            self._clean(lb, tasks)
        return {
            "taken": list(taken.values()),
            "early": len(early),
            "lost": lost,
            "twice": twice,
            "tasks": len(tasks),
        }

    def _rows(self, lb: httpx.Client) -> list[dict[str, Any]]:
        """The newest tasks, in one request."""
        return _items(lb.get("/tasks", params={"limit": 200}).json())

    def _all_running(self, lb: httpx.Client, tasks: dict[str, tuple[str, str]]) -> bool:
        """Every task begun (an import has bytes); one that ended already (taken from a busy
        instance, see :meth:`round`) counts as begun."""
        listed = {r["id"]: r for r in self._rows(lb)}
        for task_id, (kind, _) in tasks.items():
            row = listed.get(task_id) or lb.get(f"/tasks/{task_id}").json()
            if row["state"] == "pending":
                return False
            if row["state"] == "running" and kind == "vm.create" and not row.get("bytes_done"):
                return False
        return True

    def _follow(
        self, lb: httpx.Client, tasks: dict[str, tuple[str, str]], owner: str, killed: float
    ) -> tuple[dict[str, float], dict[str, dict[str, Any]]]:
        taken: dict[str, float] = {}
        rows: dict[str, dict[str, Any]] = {}
        while time.monotonic() - killed < FINISH_S and len(rows) < len(tasks):
            # One request per look (the newest tasks first): a claim is seen within ~0.1 s.
            listed = {r["id"]: r for r in self._rows(lb)}
            for task_id in set(tasks) - set(rows):
                row = listed.get(task_id) or lb.get(f"/tasks/{task_id}").json()
                if row["owner"] != owner:
                    taken.setdefault(task_id, time.monotonic() - killed)
                if row["state"] not in ("pending", "running"):
                    rows[task_id] = row
            time.sleep(0.05)
        return taken, rows

    def _lost(self, rows: dict[str, dict[str, Any]], tasks: dict[str, tuple[str, str]]) -> int:
        lost = 0
        for task_id, (kind, name) in tasks.items():
            row = rows.get(task_id)
            if row is None:
                lost += 1
                continue
            try:
                domain = self.conn.lookupByName(name)
            except libvirt.libvirtError:
                domain = None
            if kind == "vm.shutdown":
                ok = row["state"] == "succeeded" and domain is not None and not domain.isActive()
            elif row["state"] == "succeeded":
                ok = domain is not None
            else:
                pool = self.conn.storagePoolLookupByName("corral")
                pool.refresh()
                left = [v for v in pool.listVolumes() if v.startswith(f"{name}-")]
                ok = domain is None and not left
            lost += 0 if ok else 1
        return lost

    def _twice(
        self,
        tasks: dict[str, tuple[str, str]],
        before: dict[str, tuple[int, int]],
        done: Counter[tuple[str, str]],
    ) -> int:
        twice = 0
        for kind, name in tasks.values():
            starts, stops = self.log_runs(name)
            if kind == "vm.shutdown":
                was = before[name]
                extra = (starts - was[0]) > 0 or (stops - was[1]) > 1
            else:
                extra = starts > 1
            twice += 1 if extra or done[(kind, name)] > 2 else 0
        return twice

    def _clean(self, lb: httpx.Client, tasks: dict[str, tuple[str, str]]) -> None:
        for kind, name in tasks.values():
            if kind == "vm.create" and lb.get(f"/vms/{name}").status_code == 200:
                lb.post(f"/vms/{name}/stop", params={"force": True})
                lb.delete(f"/vms/{name}", params={"delete_disks": "true"})


def _database() -> tuple[psycopg.Connection[Any], str, str]:
    url = make_url(os.environ.get("CORRAL_TEST_POSTGRES_URL", PG_URL))
    admin = psycopg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        dbname=url.database or "postgres",
        autocommit=True,
    )
    name = f"corral_bench_{secrets.token_hex(6)}"
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return admin, name, url.set(database=name).render_as_string(hide_password=False)


def run(kills: int, tasks: int, base: Path) -> tuple[list[dict[str, object]], dict[str, float]]:
    admin, db_name, db_url = _database()
    daemon = PrivateLibvirtd(base / "libvirtd", shared_cache=REPO / "build" / "libvirt-cache")
    try:
        with daemon:
            cluster = Instances(base / "cluster", daemon.uri, db_url, count=3)
            try:
                cluster.start()
                bench = Bench(cluster, daemon, tasks)
                rows, taken, lost, twice = _rounds(cluster, bench, kills)
            finally:
                cluster.stop()
    finally:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db_name)))
        admin.close()
    headline = {
        "takeover_s_p50": statistics.median(taken) if taken else float("nan"),
        "takeover_s_max": max(taken, default=float("nan")),
        "tasks_lost": float(lost),
        "tasks_run_twice": float(twice),
    }
    return rows, headline


def _rounds(
    cluster: Instances, bench: Bench, kills: int
) -> tuple[list[dict[str, object]], list[float], int, int]:
    rows: list[dict[str, object]] = []
    taken: list[float] = []
    lost = twice = 0
    for k in range(kills):
        for server in cluster.servers:  # the last victim, relaunched, is back
            server.wait_ready(180)
        victim = cluster.servers[k % len(cluster.servers)]
        result = bench.round(victim, k)
        print(f"kill {k + 1}: {result}", file=sys.stderr)
        victim.launch()  # it comes back while the next round runs
        taken += result["taken"]
        lost += result["lost"]
        twice += result["twice"]
        rows.append(
            {
                "kill": k + 1,
                "tasks": result["tasks"],
                "takeover_s_max": max(result["taken"], default=float("nan")),
                "taken_from_live": result["early"],
                "lost": result["lost"],
                "run_twice": result["twice"],
            }
        )
    return rows, taken, lost, twice


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=20, help="tasks per kill (half each kind)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="corral-failover-"))
    print(f"instances' logs under {work}/cluster (kept if the bench stops)", file=sys.stderr)
    rows, headline = run(args.kills, args.tasks, work)
    shutil.rmtree(work, ignore_errors=True)
    report("kill -9 of the instance running tasks", rows, headline, json_mode=args.json)
    return 0 if headline["tasks_lost"] == 0 and headline["tasks_run_twice"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
