"""Helpers of the network tests: networks through the API, their state per host."""

from __future__ import annotations

from typing import Any

import httpx
import libvirt

from corral.testbed.guest_domains import wait_until
from corral.testbed.multihost import MultiHostTestbed
from tests.integration.api._support import wait_task


def create_network(api: httpx.Client, **body: Any) -> dict[str, Any]:
    answer = api.post("/networks", json=body)
    assert answer.status_code == 202, answer.text
    return wait_task(api, answer.json()["id"], 180)


def delete_network(api: httpx.Client, name: str) -> None:
    answer = api.delete(f"/networks/{name}")
    assert answer.status_code == 202, answer.text
    task = wait_task(api, answer.json()["id"], 180)
    assert task["state"] == "succeeded", task


def remove_vm(api: httpx.Client, vm: str) -> None:
    """Stop and delete ``vm`` until it is gone (bounded): a test's clean-up must not leave a VM
    that keeps its network in use for every test after it."""

    def gone() -> bool:
        api.post(f"/vms/{vm}/stop")
        return api.delete(f"/vms/{vm}").status_code in (204, 404)

    wait_until(gone, 60, f"VM {vm} deleted", interval=1)


def states(api: httpx.Client, name: str) -> dict[str, tuple[str, str | None]]:
    shown = api.get(f"/networks/{name}").json()
    return {h["host"]: (h["state"], h["reason"]) for h in shown["hosts"]}


def libvirt_bridge(testbed: MultiHostTestbed, host: str, name: str) -> str | None:
    conn = libvirt.open(testbed.host(host).unix_uri)
    try:
        return str(conn.networkLookupByName(name).bridgeName())
    except libvirt.libvirtError:
        return None
    finally:
        conn.close()
