"""Active-active failover: three ``corral serve`` instances on one PostgreSQL database behind
HAProxy (the README's configuration, on loopback), the private libvirtd; ``kill -9`` of the
instance running tasks, ``--kills`` times (the victims take turns; a killed one is restarted
while the next round runs).

Each round starts ``--tasks`` tasks on the victim (as if the balancer had sent them there):
half graceful shutdowns of VMs that never answer the power button (no OS: started again at the
round's start, forced when their 45 s are up, so they still run when the last import has
begun), one live migration of such a VM between two hosts of the multi-host test bed
(``corral.testbed.multihost``: two libvirt hosts in namespaces with sshd, enrolled over SSH,
migrating over the ssh transport, to and fro a round at a time; started last, the kill comes
once libvirt moves it), the rest creations importing a sparse image and asking to start (4 GiB
ones killed mid-import: the taker deletes what was made and fails them; 256 MiB ones end
sooner, some around the kill: the taker finishes and starts those whose VM was made). Once
every task runs, the victim is killed; tasks are then polled through the balancer. The victim
is the instance whose pid the ``instances`` table records for the process killed (not a task's
owner: a task may have been taken over already).

- ``takeover_s_p50``: seconds from the kill until a task's ``owner`` names another instance
  (the claim), median over every task of every round (target <= 5; ``takeover_s_max`` too).
- ``tasks_lost``: tasks not finished 90 s after the kill, or whose end contradicts libvirt (a
  shutdown "succeeded" whose VM runs; a creation "failed" whose domain or volumes remain, or
  "succeeded" without its domain, or not running when asked to start; a migration whose VM
  does not run on the destination when it succeeded, on the source when it failed).
- ``tasks_run_twice``: work done twice, read from libvirt and the audit log, not from the tasks
  table. libvirt writes a ``starting up`` line to a domain's QEMU log for every QEMU it starts
  and a ``shutting down`` line for every stop: a round's shutdown VM must show exactly one more
  stop (and no start), an imported VM at most one start, a migrated VM one more start on the
  destination and one more stop on the source. The audit log holds an "ok" entry when
  a request is accepted and one when its work is done: more than two per operation and VM in a
  round is work done twice.

    .venv/bin/python bench/failover.py [--kills 10] [--tasks 20] [--json]

Needs the suite's PostgreSQL (``scripts/setup.sh --test``; ``CORRAL_TEST_POSTGRES_URL``),
``haproxy`` and root (the test bed's namespaces). About a minute per kill on two busy cores.
"""

from __future__ import annotations

import argparse
import json
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
from sqlalchemy import Engine, create_engine, make_url, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import report

from corral.testbed.corral_server import CorralServer
from corral.testbed.enroll import enroll_request, wait_task
from corral.testbed.guest_domains import wait_until
from corral.testbed.instances import Instances
from corral.testbed.multihost import MultiHostTestbed, allocate_slot
from corral.testbed.private_libvirtd import PrivateLibvirtd
from corral.testbed.qemu_log import qemu_runs

REPO = Path(__file__).resolve().parents[1]
PG_URL = "postgresql+psycopg://corral:corral-test@127.0.0.1:5432/postgres"
CACHE = REPO / "build" / "libvirt-cache"
FINISH_S = 90
READY_S = 600
TRAVELLER = "fo-traveller"
SHUTDOWN_S = 45


def _items(data: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = data["items"] if isinstance(data, dict) else data
    return items


def deaf_vm(name: str, host: str = "local") -> dict[str, Any]:
    """No OS: the firmware idles and nothing answers the power button."""
    return {
        "name": name,
        "host": host,
        "vcpus": 1,
        "memory_mib": 32,
        "boot": {"source": "cdrom"},
        "cdrom_drive": True,
        "disks": [],
        "nics": [],
    }


class Bench:
    def __init__(
        self,
        cluster: Instances,
        daemon: PrivateLibvirtd,
        bed: MultiHostTestbed,
        db: Engine,
        tasks: int,
    ) -> None:
        self.cluster = cluster
        self.db = db
        self.daemon = daemon
        self.bed = bed
        self.deaf = [f"fo-deaf{i}" for i in range(tasks // 2)]
        self.imports = max(tasks - len(self.deaf) - 1, 0)
        self.images: dict[str, Path] = {}
        for size, label in ((4 * 1024**3, "big"), (256 * 1024**2, "small")):
            self.images[label] = cluster.servers[0].base_dir.parent / f"{label}.raw"
            with self.images[label].open("wb") as handle:
                handle.truncate(size)
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # lookups that miss
        self.conn = libvirt.open(daemon.uri)
        with cluster.client() as lb:
            _enroll(lb, bed, db)
        # An instance reads the hosts at start only: one enrolled through another instance is
        # unknown to it until it restarts (a gap of issue 16's several instances).
        for server in cluster.servers:
            server.stop()
            server.launch()
        for server in cluster.servers:
            server.wait_ready(READY_S)
            with server.client() as direct:
                for host in ("h1", "h2"):
                    wait_until(
                        lambda h=host: (
                            direct.get(f"/hosts/{h}").json().get("status")  # type: ignore[misc]
                            == "connected"
                        ),
                        120,
                        f"{host} connected on {server.base_dir.name}",
                    )
        with cluster.client() as lb:
            for name in self.deaf:
                lb.post("/vms", json=deaf_vm(name)).raise_for_status()
            lb.post("/vms", json=deaf_vm(TRAVELLER, "h1")).raise_for_status()
            lb.post(f"/vms/{TRAVELLER}/start").raise_for_status()

    def log_runs(self, name: str, host: str = "local") -> tuple[int, int]:
        if host == "local":
            return qemu_runs(self.daemon.host_path(f"/var/log/libvirt/qemu/{name}.log"))
        return qemu_runs(self.bed.host(host).base / "log" / "qemu" / f"{name}.log")

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
                image = self.images["big" if i % 2 == 0 else "small"]
                # On the one host by name: placement keeps vCPUs within the overcommit limit,
                # which this many running VMs on two CPUs exceed.
                spec = {"name": name, "host": "local", "memory_mib": 32, "nics": [], "start": True}
                spec["disks"] = [{"import_path": str(image)}]
                answer = on_victim.post("/vms", json=spec)
                assert answer.status_code == 202, answer.text
                started[answer.json()["id"]] = ("vm.create", name)
        return started

    def migrate(self, victim: CorralServer, to: str) -> str:
        """The traveller's migration, started on the victim after the round's other tasks,
        capped at 1 MiB/s (a VM without an OS moves in seconds); its task id."""
        with victim.client() as on_victim:
            body = {"to": to, "transport": "ssh", "bandwidth_mib_s": 1}
            answer = on_victim.post(f"/vms/{TRAVELLER}/migrate", json=body)
            assert answer.status_code == 202, answer.text
            task_id: str = answer.json()["id"]
        return task_id

    def round(self, victim: CorralServer, round_no: int) -> dict[str, Any]:
        with self.cluster.client() as lb:
            source = lb.get(f"/vms/{TRAVELLER}").json()["host"]  # a failed move stays there
            dest = "h2" if source == "h1" else "h1"
            self.prepare(lb)
            before = {name: self.log_runs(name) for name in self.deaf}
            moved_before = (self.log_runs(TRAVELLER, source), self.log_runs(TRAVELLER, dest))
            audit_from = max((e["id"] for e in _items(lb.get("/audit").json())), default=0)
            owner = self.instance_of(victim)
            tasks = self.start_tasks(victim, round_no)
            wait_until(lambda: self._all_running(lb, tasks), 180, "every task to run")
            # Last, so that libvirt is moving the VM at the kill (it takes seconds).
            moving = self.migrate(victim, dest)
            tasks[moving] = ("vm.migrate", TRAVELLER)
            wait_until(lambda: self._all_running(lb, {moving: tasks[moving]}), 60, "the move")
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
            lost = self._lost(rows, tasks, source, dest)
            twice = self._twice(tasks, before, done)
            twice += self._moved_twice(source, dest, moved_before)
            self._clean(lb, tasks)
        return {
            "taken": list(taken.values()),
            "early": len(early),
            "lost": lost,
            "twice": twice,
            "tasks": len(tasks),
        }

    def instance_of(self, server: CorralServer) -> str:
        """The instance id of the process ``server`` runs, from the ``instances`` table."""

        def look() -> str | None:
            with self.db.connect() as connection:
                found = connection.scalar(
                    text(
                        "SELECT id FROM instances WHERE pid = :pid AND stopped_at IS NULL "
                        "ORDER BY started_at DESC LIMIT 1"
                    ),
                    {"pid": server.pid},
                )
            return str(found) if found else None

        return wait_until(look, 30, f"the instance of pid {server.pid}")

    def _rows(self, lb: httpx.Client) -> list[dict[str, Any]]:
        """The newest tasks, in one request."""
        return _items(lb.get("/tasks", params={"limit": 200}).json())

    def _all_running(self, lb: httpx.Client, tasks: dict[str, tuple[str, str]]) -> bool:
        """Every task begun (a big import has bytes); one that ended already (a small import,
        or one taken from a busy instance, see :meth:`round`) counts as begun."""
        listed = {r["id"]: r for r in self._rows(lb)}
        for task_id, (kind, _) in tasks.items():
            row = listed.get(task_id) or lb.get(f"/tasks/{task_id}").json()
            if row["state"] == "pending":
                return False
            copying = kind in ("vm.create", "vm.migrate")  # begun: bytes on their way
            if row["state"] == "running" and copying and not row.get("bytes_done"):
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
                if row["state"] not in ("pending", "running"):
                    rows[task_id] = row
                if row["owner"] != owner:
                    taken.setdefault(task_id, time.monotonic() - killed)
            time.sleep(0.05)
        return taken, rows

    def _lost(
        self,
        rows: dict[str, dict[str, Any]],
        tasks: dict[str, tuple[str, str]],
        source: str,
        dest: str,
    ) -> int:
        lost = 0
        for task_id, (kind, name) in tasks.items():
            row = rows.get(task_id)
            if row is None:
                print(f"  lost: {kind} {name}: unfinished", file=sys.stderr)
                lost += 1
                continue
            if kind == "vm.migrate":
                # Moved, or failed saying so with the VM where it was.
                moved = row["state"] == "succeeded"
                ok = self._runs_on(name, dest if moved else source)
            else:
                ok = self._ended_right(kind, name, row)
            if not ok:
                print(f"  lost: {kind} {name}: {row['state']} {row.get('error')}", file=sys.stderr)
            lost += 0 if ok else 1
        return lost

    def _ended_right(self, kind: str, name: str, row: dict[str, Any]) -> bool:
        try:
            domain = self.conn.lookupByName(name)
        except libvirt.libvirtError:
            domain = None
        if kind == "vm.shutdown":
            return row["state"] == "succeeded" and domain is not None and not domain.isActive()
        if row["state"] == "succeeded":
            return domain is not None and bool(domain.isActive())
        pool = self.conn.storagePoolLookupByName("corral")
        pool.refresh()
        left = [v for v in pool.listVolumes() if v.startswith(f"{name}-")]
        return domain is None and not left

    def _runs_on(self, name: str, host: str) -> bool:
        conn = libvirt.open(self.bed.host(host).unix_uri)
        try:
            return bool(conn.lookupByName(name).isActive())
        except libvirt.libvirtError:
            return False
        finally:
            conn.close()

    def _twice(
        self,
        tasks: dict[str, tuple[str, str]],
        before: dict[str, tuple[int, int]],
        done: Counter[tuple[str, str]],
    ) -> int:
        twice = 0
        for kind, name in tasks.values():
            extra = False
            if kind == "vm.shutdown":
                starts, stops = self.log_runs(name)
                was = before[name]
                extra = (starts - was[0]) > 0 or (stops - was[1]) > 1
            elif kind == "vm.create":
                extra = self.log_runs(name)[0] > 1
            if extra or done[(kind, name)] > 2:
                print(f"  twice: {kind} {name}", file=sys.stderr)
                twice += 1
        return twice

    def _moved_twice(
        self, source: str, dest: str, before: tuple[tuple[int, int], tuple[int, int]]
    ) -> int:
        """The migration, from both hosts' QEMU logs: at most one stop on the source (none
        if it failed), no start there, at most one start on the destination (a failed move
        may have started and stopped one there)."""
        (s_starts, s_stops), (d_starts, _) = before
        src = self.log_runs(TRAVELLER, source)
        dst = self.log_runs(TRAVELLER, dest)
        if src[0] != s_starts or src[1] > s_stops + 1 or dst[0] > d_starts + 1:
            print(f"  twice: migration, logs {before} -> {src}, {dst}", file=sys.stderr)
            return 1
        return 0

    def _clean(self, lb: httpx.Client, tasks: dict[str, tuple[str, str]]) -> None:
        for kind, name in tasks.values():
            if kind == "vm.create" and lb.get(f"/vms/{name}").status_code == 200:
                lb.post(f"/vms/{name}/stop", params={"force": True})
                lb.delete(f"/vms/{name}", params={"delete_disks": "true"})


def _enroll(lb: httpx.Client, bed: MultiHostTestbed, db: Engine, tries: int = 3) -> None:
    """Each host of the test bed, tried again if its enrollment failed (on a machine this
    busy an instance may lose an enrollment's lease, and no resumer finishes one)."""
    for host in bed.hosts:
        for left in range(tries - 1, -1, -1):
            # From the database: an instance knows only the hosts it read at start or added.
            with db.connect() as connection:
                known = connection.scalar(
                    text("SELECT count(*) FROM hosts WHERE name = :n"), {"n": host.name}
                )
            if known:
                break
            answer = lb.post("/host-enrollments", json=enroll_request(bed, host.name, "tcg"))
            answer.raise_for_status()
            task = wait_task(lb, answer.json()["id"])
            if task["state"] == "succeeded":
                break
            print(f"enrollment of {host.name}: {task['error']}", file=sys.stderr)
            if not left:
                raise RuntimeError(f"could not enroll {host.name}")


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
    daemon = PrivateLibvirtd(base / "libvirtd", shared_cache=CACHE)
    slot, slot_lock = allocate_slot()
    bed = MultiHostTestbed(base / "testbed", hosts=2, slot=slot, shared_cache=CACHE)
    try:
        with daemon, bed:
            env = {"CORRAL_MIGRATION_TRANSPORTS": json.dumps(bed.migration_transport_options())}
            cluster = Instances(base / "cluster", daemon.uri, db_url, count=3, extra_env=env)
            try:
                cluster.start(timeout=READY_S)  # two cores, and the machine is shared
                engine = create_engine(db_url)
                try:
                    bench = Bench(cluster, daemon, bed, engine, tasks)
                    rows, taken, lost, twice = _rounds(cluster, bench, kills)
                finally:
                    engine.dispose()
            finally:
                cluster.stop()
    finally:
        slot_lock.close()
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
            server.wait_ready(READY_S)
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
