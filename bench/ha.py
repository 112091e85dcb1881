"""High availability trials on the multi-host test bed: three libvirt hosts in namespaces, each
with an ``ipmi_sim`` BMC, enrolled in one ``corral serve`` (SQLite, default HA settings), a
shared-dir storage domain (which also carries the hosts' storage heartbeats), one HA VM (the
busybox kernel guest, TCG) per host. Each trial picks the host of a random HA VM and does one
of these to it (randomly mixed, ``--seed``):

- ``power``: power cut through its BMC (IPMI-over-LAN).
- ``link``: Corral's libvirt connection to it dropped (iptables in its namespace); it runs on.
  Corral cannot tell that from death: it must fence through the BMC before restarting.
- ``kill``: power cut, and Corral killed (SIGKILL) as soon as it suspects the host, then
  started again: the recovery must resume.
- ``dead_bmc``: the host and its BMC both die: no BMC's word, so the restart must wait for the
  host's storage heartbeat to stay still past its self-fence time (its leases expired).
- ``cut_nobmc``: the BMC dead and Corral's link cut while the host runs on and reaches its
  storage (its heartbeat moves): nothing may be restarted, for the lease time and 10 s more.

After each trial the host is powered on again and must come back ``ok``, starting none of the
VMs that moved away. Throughout, a watcher lists every host's running domains (through each
host's own socket) about three times a second.

- ``restart_s_p50_bmc``: seconds from the failure until every HA VM of the host runs elsewhere
  (power, link and kill trials; target <= 60). ``restart_s_max_bmc`` too.
- ``restart_s_p50_lease``: the same for dead_bmc trials (target <= 120).
- ``double_runs``: looks at which one VM ran on two hosts (0).
- ``false_restarts``: VMs that changed host although their host was not the trial's, or that
  moved in a cut_nobmc trial (0).

    .venv/bin/python bench/ha.py [--trials 20] [--seed 1] [--kinds power,link,...] [--json]

Needs root (the test bed's namespaces) and ``ipmi_sim``; 20-60 s per trial here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import report

from corral.errors import CorralError
from corral.services.power.drivers.ipmi import IpmiPower
from corral.testbed.bmc import BmcSimulator, free_udp_port, power_off, power_on
from corral.testbed.corral_server import CorralServer
from corral.testbed.enroll import enroll_all
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import build_kernel_guest
from corral.testbed.ha_watch import TwiceWatcher, cut_from_corral
from corral.testbed.multihost import MultiHostTestbed, allocate_slot
from corral.testbed.private_libvirtd import PrivateLibvirtd
from corral.testbed.vm_specs import kernel_vm

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "build" / "libvirt-cache"
GUESTS = REPO / "build" / "guests"
DOMAIN = "bench-ha"
USER, PASSWORD = "corral", "Bench-ha-pw1"
KINDS = ("power", "link", "kill", "dead_bmc", "cut_nobmc")
#: Corral's default self-fence time (ha_self_fence_after_s) plus its margin.
LEASE_S = 25
RESTART_LIMIT_S = 120
BMC_KINDS = ("power", "link", "kill")


def _bmc_off(bmc: BmcSimulator) -> None:
    """The power cut, through the BMC as any IPMI client would."""
    asyncio.run(IpmiPower(bmc.host.name, bmc.address, bmc.port, USER, PASSWORD).power_off())


def _vms(client: httpx.Client) -> dict[str, dict[str, Any]]:
    items = client.get("/vms", params={"limit": 1000}).json()["items"]
    return {v["name"]: v for v in items if v["name"].startswith("bha-")}


def _ha_state(client: httpx.Client, host: str) -> str:
    [found] = [h for h in client.get("/ha").json()["hosts"] if h["host"] == host]
    return str(found["state"])


def _heartbeat(client: httpx.Client, host: str) -> str | None:
    [found] = [h for h in client.get("/ha").json()["hosts"] if h["host"] == host]
    return found.get("heartbeat")  # type: ignore[no-any-return]


def _all_elsewhere(client: httpx.Client, names: list[str], victim: str) -> bool:
    vms = _vms(client)
    return all(vms[n]["host"] != victim and vms[n]["state"] == "running" for n in names)


class Bench:
    def __init__(self, work: Path, seed: int, kinds: tuple[str, ...] = KINDS) -> None:
        self.work = work
        self.random = random.Random(seed)
        self.kinds = kinds
        self.rows: list[dict[str, Any]] = []
        self.false_restarts = 0

    def run(self, trials: int) -> dict[str, float]:
        daemon = PrivateLibvirtd(self.work / "libvirtd", shared_cache=CACHE)
        slot, slot_lock = allocate_slot()
        bed = MultiHostTestbed(self.work / "testbed", hosts=3, slot=slot, shared_cache=CACHE)
        try:
            with daemon, bed, contextlib.ExitStack() as stack:
                server = CorralServer(
                    self.work / "corral",
                    daemon.uri,
                    extra_env={"CORRAL_RECONCILE_INTERVAL_S": "3600"},
                    host_path_roots=[GUESTS.resolve()],
                )
                server.start(timeout=300)
                stack.callback(server.stop)
                bmcs = {
                    h.name: stack.enter_context(
                        BmcSimulator(
                            bed,
                            h.name,
                            self.work / f"bmc-{h.name}",
                            address="127.0.0.1",
                            port=free_udp_port(),
                            user=USER,
                            password=PASSWORD,
                        )
                    )
                    for h in bed.hosts
                }
                with server.client() as client:
                    self._set_up(client, bed, bmcs)
                    names = sorted(_vms(client))
                with TwiceWatcher(bed, set(names)) as watcher:
                    self._trials(trials, server, bed, bmcs, watcher)
                double_runs = watcher.double_runs
                listed_twice = watcher.listed_twice
                looks = watcher.looks
        finally:
            slot_lock.close()
        bmc_s = [r["restart_s"] for r in self.rows if r["kind"] in BMC_KINDS and "restart_s" in r]
        lease_s = [
            r["restart_s"] for r in self.rows if r["kind"] == "dead_bmc" and "restart_s" in r
        ]
        return {
            "trials": float(len(self.rows)),
            "restart_s_p50_bmc": statistics.median(bmc_s) if bmc_s else float("nan"),
            "restart_s_max_bmc": max(bmc_s) if bmc_s else float("nan"),
            "restart_s_p50_lease": statistics.median(lease_s) if lease_s else float("nan"),
            "restart_s_max_lease": max(lease_s) if lease_s else float("nan"),
            "double_runs": float(double_runs),
            "false_restarts": float(self.false_restarts),
            "failed_trials": float(sum(1 for r in self.rows if "error" in r)),
            "watcher_looks": float(looks),
            "listed_twice_one_qemu": float(listed_twice),
        }

    def _set_up(
        self, client: httpx.Client, bed: MultiHostTestbed, bmcs: dict[str, BmcSimulator]
    ) -> None:
        for task in enroll_all(client, bed):
            if task["state"] != "succeeded":
                raise RuntimeError(f"enrollment failed: {task}")
        shared = self.work / "shared"
        shared.mkdir()
        made = client.post(
            "/storage-domains", json={"kind": "shared-dir", "name": DOMAIN, "path": str(shared)}
        )
        made.raise_for_status()
        client.put("/hosts/local/maintenance", json={"enabled": True}).raise_for_status()
        for name, bmc in bmcs.items():
            driver = {
                "driver": "ipmi",
                "address": bmc.address,
                "port": bmc.port,
                "user": USER,
                "password": PASSWORD,
            }
            client.put(f"/hosts/{name}/power", json={"driver": driver}).raise_for_status()
        guest = build_kernel_guest(GUESTS)
        for index, host in enumerate(bed.hosts):
            name = f"bha-{host.name}"
            spec = kernel_vm(name, guest, disk_gib=None, host=host.name)
            spec["disks"] = [{"name": "data", "size_gib": 0.25, "domain": DOMAIN}]
            client.post("/vms", json=spec).raise_for_status()
            client.post(f"/vms/{name}/start").raise_for_status()
            body = {"enabled": True, "priority": 10 * (index + 1)}
            client.put(f"/vms/{name}/ha", json=body).raise_for_status()

    def _trials(
        self,
        trials: int,
        server: CorralServer,
        bed: MultiHostTestbed,
        bmcs: dict[str, BmcSimulator],
        watcher: TwiceWatcher,
    ) -> None:
        for index in range(trials):
            kind = self.kinds[self.random.randrange(len(self.kinds))]
            try:
                row = self._trial(index, kind, server, bed, bmcs, watcher)
            except Exception:
                print(server.log_tail(30000), file=sys.stderr)
                raise
            self.rows.append(row)
            print(row, file=sys.stderr)

    def _trial(
        self,
        index: int,
        kind: str,
        server: CorralServer,
        bed: MultiHostTestbed,
        bmcs: dict[str, BmcSimulator],
        watcher: TwiceWatcher,
    ) -> dict[str, Any]:
        with server.client() as client:
            before = _vms(client)
        victim = self.random.choice(sorted({v["host"] for v in before.values()}))
        names = [n for n, v in before.items() if v["host"] == victim]
        row: dict[str, Any] = {"trial": index, "kind": kind, "host": victim, "vms": len(names)}
        # A host in service beats on the shared domain (Corral starts it, at once after a
        # return), and Corral has seen the beat move: a host in service for a while.
        self._until_beating(victim)
        with server.client() as client:
            wait_until(lambda: _heartbeat(client, victim) == "moving", 90,
                       f"Corral seeing {victim}'s heartbeat move", interval=0.5)  # fmt: skip
        started = time.monotonic()
        print(f"trial {index} {kind} on {victim} ({names}) at {started:.1f}", file=sys.stderr)
        try:
            self._inflict(kind, victim, names, row, started, server, bed, bmcs)
        except (CorralError, RuntimeError, httpx.HTTPError, subprocess.SubprocessError) as exc:
            row["error"] = str(exc)[:200]  # reported; the next trial runs
            print(server.log_tail(20000), file=sys.stderr)
        finally:
            self._restore(server, bed, bmcs, victim, kind)
        with server.client() as client:
            after = _vms(client)
        for name, vm in after.items():
            if name not in names and vm["host"] != before[name]["host"]:
                self.false_restarts += 1
        if kind == "cut_nobmc":  # fenced once its BMC was back, before Corral heard it: allowed
            row["moved_after_bmc_back"] = sum(after[n]["host"] != victim for n in names)
        return row

    def _inflict(
        self,
        kind: str,
        victim: str,
        names: list[str],
        row: dict[str, Any],
        started: float,
        server: CorralServer,
        bed: MultiHostTestbed,
        bmcs: dict[str, BmcSimulator],
    ) -> None:
        """Do ``kind`` to ``victim`` and wait for what must follow (see the module)."""
        if kind == "cut_nobmc":  # alive on storage, cut from Corral, no BMC: nothing may move
            bmcs[victim].stop()
            with cut_from_corral(bed.host(victim)), server.client() as client:
                self._hold(client, names, victim, row, started)
            return
        if kind == "link":
            with cut_from_corral(bed.host(victim)), server.client() as client:
                self._wait_restart(client, names, victim, row, started)
            return
        if kind == "dead_bmc":  # no BMC's word: the storage lease must prove it
            bmcs[victim].stop()
            power_off(bed, bed.host(victim))
        else:  # power, kill
            _bmc_off(bmcs[victim])
        if kind == "kill":
            with server.client() as client:
                wait_until(lambda: _ha_state(client, victim) != "ok", 60, "suspect", interval=0.1)
            server.kill()
            server.start(timeout=300)
        with server.client() as client:
            self._wait_restart(client, names, victim, row, started)

    def _hold(
        self,
        client: httpx.Client,
        names: list[str],
        victim: str,
        row: dict[str, Any],
        started: float,
    ) -> None:
        """The lease time and 10 s more with nothing moved off ``victim``."""
        wait_until(lambda: _ha_state(client, victim) == "fencing", 60, "fencing")
        until = time.monotonic() + LEASE_S + 10
        while time.monotonic() < until:
            vms = _vms(client)
            moved = [n for n in names if vms[n]["host"] != victim]
            if moved:
                self.false_restarts += len(moved)
                row["error"] = f"restarted while alive on storage: {moved}"
                break
            time.sleep(0.5)
        row["held_s"] = round(time.monotonic() - started, 1)

    def _until_beating(self, host: str) -> None:
        path = self.work / "shared" / ".corral-ha" / f"{host}.beat"

        def seq() -> float:
            try:
                return float(json.loads(path.read_text())["seq"])
            except (OSError, ValueError, KeyError):
                return -1.0

        first = seq()
        wait_until(lambda: seq() > max(first, 0), 90, f"{host}'s storage heartbeat", interval=0.5)

    def _wait_restart(
        self,
        client: httpx.Client,
        names: list[str],
        victim: str,
        row: dict[str, Any],
        started: float,
    ) -> None:
        wait_until(
            lambda: _all_elsewhere(client, names, victim),
            RESTART_LIMIT_S,
            f"the HA VMs of {victim} running elsewhere",
            interval=0.25,
        )
        row["restart_s"] = round(time.monotonic() - started, 1)

    def _restore(
        self,
        server: CorralServer,
        bed: MultiHostTestbed,
        bmcs: dict[str, BmcSimulator],
        victim: str,
        kind: str,
    ) -> None:
        if kind in ("dead_bmc", "cut_nobmc"):
            bmcs[victim].start()
        if kind == "cut_nobmc":
            # The link is back and so is the BMC: either Corral hears the host first (ok,
            # nothing moved) or the fencing that waited for the BMC finishes first (the host
            # is switched off and its VMs restart elsewhere: allowed, fenced first). Power it
            # on only once the monitor has settled, or the fencing switches it off again.
            with server.client() as client:
                wait_until(
                    lambda: _ha_state(client, victim) not in ("suspect", "fencing"),
                    120,
                    f"{victim} out of fencing",
                    interval=0.5,
                )
        power_on(bed, bed.host(victim))
        if not server.running:
            server.start(timeout=300)
        with server.client() as client:
            wait_until(
                lambda: client.get(f"/hosts/{victim}").json().get("connected"),
                120,
                f"{victim} connected",
                interval=0.5,
            )
            wait_until(lambda: _ha_state(client, victim) == "ok", 60, f"{victim} ok")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--kinds",
        default=",".join(KINDS),
        help=f"comma-separated trial kinds to mix (default: all of {', '.join(KINDS)})",
    )
    args = parser.parse_args()
    kinds = tuple(k for k in args.kinds.split(",") if k)
    if not kinds or set(kinds) - set(KINDS):
        parser.error(f"--kinds takes some of {', '.join(KINDS)}")
    with tempfile.TemporaryDirectory(prefix="corral-ha-") as tmp:
        bench = Bench(Path(tmp), args.seed, kinds)
        headline = bench.run(args.trials)
        report(
            "HA trials (power cut, link cut, manager kill, dead BMC)",
            bench.rows,
            headline,
            json_mode=args.json,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
