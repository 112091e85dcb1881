"""Two ``corral serve`` instances on one PostgreSQL database and the private libvirtd:
``kill -9`` of the one running tasks, and the other takes them over and finishes each once.

The short version of the failover bench: one kill, two tasks (an import-creation that the
taker undoes from what libvirt has, a graceful shutdown it waits out and forces)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import libvirt
import pytest

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import KernelGuest
from corral.testbed.private_libvirtd import PrivateLibvirtd
from tests.conftest import GUEST_BUILD_DIR
from tests.integration.api._support import kernel_vm, wait_state

pytestmark = pytest.mark.postgres


@pytest.fixture
def pair(
    private_libvirtd: PrivateLibvirtd, pg_url: str, tmp_path: Path
) -> Iterator[tuple[CorralServer, CorralServer]]:
    """Instances A and B: one database, one data directory (the same CA and keys)."""
    env = {"CORRAL_DATABASE_URL": pg_url, "CORRAL_RECONCILE_INTERVAL_S": "3600"}
    a = CorralServer(
        tmp_path / "a", private_libvirtd.uri, extra_env=env, host_path_roots=[GUEST_BUILD_DIR]
    )
    b = CorralServer(
        tmp_path / "b",
        private_libvirtd.uri,
        extra_env={**env, "CORRAL_DATA_DIR": a.env["CORRAL_DATA_DIR"]},
        host_path_roots=[GUEST_BUILD_DIR],
    )
    try:
        a.start()
        b.token = a.token  # one database: A's admin and token
        b.start()
        yield a, b
    finally:
        a.stop()
        b.stop()


def _task(client: httpx.Client, task_id: str) -> dict[str, Any]:
    answer = client.get(f"/tasks/{task_id}")
    assert answer.status_code == 200, answer.text
    task: dict[str, Any] = answer.json()
    return task


def test_a_killed_instances_tasks_are_finished_once_by_the_other(
    pair: tuple[CorralServer, CorralServer],
    conn: libvirt.virConnect,
    kernel_guest: KernelGuest,
    tmp_path: Path,
) -> None:
    a, b = pair
    pool = conn.storagePoolLookupByName("corral")
    image = tmp_path / "big.raw"
    with image.open("wb") as handle:
        handle.truncate(4 * 1024**3)  # sparse: cheap to make, slow enough to stream
    with a.client() as on_a, b.client() as on_b:
        # A guest booted with acpi=off ignores the power button: its graceful shutdown waits
        # until forced.
        spec = kernel_vm("tk-deaf", kernel_guest, disk_gib=None)
        spec["boot"]["cmdline"] += " acpi=off"
        made = on_a.post("/vms", json=spec)
        assert made.status_code == 201, made.text
        assert on_a.post("/vms/tk-deaf/start").status_code == 200
        shutdown = on_a.post("/vms/tk-deaf/shutdown", json={"timeout_s": 6, "force": True})
        assert shutdown.status_code == 202, shutdown.text
        big = {"name": "tk-import", "memory_mib": 64, "disks": [{"import_path": str(image)}]}
        imported = on_a.post("/vms", json=big)
        assert imported.status_code == 202, imported.text
        ids = [shutdown.json()["id"], imported.json()["id"]]
        wait_until(
            lambda: (_task(on_b, ids[1]).get("bytes_done") or 0) > 0, 60, "the import to run"
        )
        owner_a = _task(on_b, ids[0])["owner"]
        assert owner_a and _task(on_b, ids[1])["owner"] == owner_a

        a.kill()
        killed = time.monotonic()
        taken: dict[str, float] = {}  # when B claimed each task (its owner changed)
        done: dict[str, float] = {}  # when it finished
        while len(done) < len(ids):
            for task_id in set(ids) - set(done):
                task, at = _task(on_b, task_id), time.monotonic() - killed
                if task["owner"] != owner_a:
                    taken.setdefault(task_id, at)
                if task["state"] not in ("pending", "running"):
                    done[task_id] = at
            assert time.monotonic() - killed < 60, f"not finished: {set(ids) - set(done)}"
            time.sleep(0.05)  # polling the other instance, bounded above
        print(
            "after kill -9: taken over in "
            + ", ".join(f"{taken[i]:.2f} s" for i in ids)
            + "; finished in "
            + ", ".join(f"{done[i]:.2f} s" for i in ids)
        )

        ended, undone = (_task(on_b, i) for i in ids)
        assert ended["state"] == "succeeded", ended
        assert ended["result"] == {"vm": "tk-deaf", "forced": True, "resumed": True}
        assert ended["attempt"] == 2 and ended["owner"] != owner_a
        assert wait_state(on_b, "tk-deaf", "shutoff")["state"] == "shutoff"
        assert undone["state"] == "failed" and "interrupted" in undone["error"], undone
        assert undone["attempt"] == 2 and undone["owner"] == ended["owner"]
        assert on_b.get("/vms/tk-import").status_code == 404
        pool.refresh()
        assert [v for v in pool.listVolumes() if v.startswith("tk-import")] == []
        # Once: the request (through A) and one outcome (B's), not A's as well.
        audit = on_b.get("/audit", params={"action": "vm.shutdown", "limit": 1000}).json()
        entries = audit["items"] if isinstance(audit, dict) else audit
        mine = [e for e in entries if e["target"] == "tk-deaf"]
        assert len(mine) == 2 and all(e["outcome"] == "ok" for e in mine), mine
        assert on_b.delete("/vms/tk-deaf").status_code in (200, 204)
