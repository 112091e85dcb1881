"""Enrolling a test bed's hosts into a running Corral through its API (the real
``POST /host-enrollments`` path, over SSH to each host's sshd), and removing them again."""

from __future__ import annotations

import time
from typing import Any

import httpx

from corral.errors import HostError, OperationTimeout
from corral.testbed.multihost import MultiHostTestbed


def _check(answer: httpx.Response, what: str) -> Any:
    if answer.status_code >= 400:
        detail = answer.json().get("detail", answer.text) if answer.content else answer.text
        raise HostError(f"{what}: HTTP {answer.status_code}: {detail}")
    return answer.json() if answer.content else None


def every_item(client: httpx.Client, path: str, what: str, **params: str) -> list[Any]:
    """Every item of a paged list route, following its cursors."""
    items: list[Any] = []
    query: dict[str, str] = {**params, "limit": "1000"}
    while True:
        page = _check(client.get(path, params=query), what)
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        query["cursor"] = page["next_cursor"]


def wait_task(client: httpx.Client, task_id: str, seconds: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        task: dict[str, Any] = _check(client.get(f"/tasks/{task_id}"), "read a task")
        if task["state"] in ("succeeded", "failed", "cancelled"):
            return task
        time.sleep(0.2)
    raise OperationTimeout(f"task {task_id} did not finish within {seconds:g} s")


def enroll_request(testbed: MultiHostTestbed, name: str, accelerator: str | None) -> dict[str, Any]:
    host = testbed.host(name)
    body: dict[str, Any] = {
        "name": host.name,
        "address": host.address,
        "ssh": {"destination": host.ssh_destination, "key_path": str(testbed.ssh_key)},
    }
    if accelerator:
        body["accelerator"] = accelerator
    return body


def enroll_all(
    client: httpx.Client, testbed: MultiHostTestbed, accelerator: str | None = "tcg"
) -> list[dict[str, Any]]:
    """Enroll every host (in parallel: one task each); the finished tasks. ``client`` is an
    authenticated client with base URL ``…/api/v1``."""
    ids = []
    for host in testbed.hosts:
        body = enroll_request(testbed, host.name, accelerator)
        ids.append(_check(client.post("/host-enrollments", json=body), f"enroll {host.name}")["id"])
    tasks = [wait_task(client, task_id) for task_id in ids]
    failed = [f"{t['target']}: {t['error']}" for t in tasks if t["state"] != "succeeded"]
    if failed:
        raise HostError("enrollment failed: " + "; ".join(failed))
    return tasks


def remove_all(client: httpx.Client, testbed: MultiHostTestbed) -> list[str]:
    """Delete the VMs on the test bed's hosts (with their disks) and remove the hosts from
    Corral; what was removed."""
    addresses = {h.address for h in testbed.hosts}
    hosts = every_item(client, "/hosts", "list hosts")
    removed = []
    for host in hosts:
        if host.get("address") not in addresses:
            continue
        name = host["name"]
        for vm in every_item(client, "/vms", "list VMs", host=name):
            client.post(f"/vms/{vm['name']}/stop")
            client.delete(f"/vms/{vm['name']}", params={"delete_disks": "true"})
        _check(client.delete(f"/hosts/{name}"), f"remove host {name}")
        removed.append(name)
    return removed
