"""What the HA tests share: HA VMs on the shared domain, BMC switching, hosts' states; the
watcher and the link cut are :mod:`corral.testbed.ha_watch`."""

from __future__ import annotations

import asyncio
import re
import subprocess
from typing import Any

import httpx

from corral.services.power.drivers.ipmi import IpmiPower
from corral.testbed.bmc import BmcSimulator
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import KernelGuest
from corral.testbed.ha_watch import TwiceWatcher, cut_from_corral
from corral.testbed.multihost import MultiHostTestbed
from corral.testbed.vm_specs import kernel_vm

DOMAIN = "ha-shared"
BMC_USER = "corral"
BMC_PASSWORD = "Ha-bmc-s3cret"
HOSTS = ("h1", "h2", "h3")
__all__ = ["TwiceWatcher", "cut_from_corral"]
HEARTBEAT = re.compile(rb"corral-heartbeat (\d+)")


def heartbeat(api: httpx.Client, name: str) -> int:
    answer = api.get(f"/vms/{name}/log", params={"tail_bytes": 2048})
    found = HEARTBEAT.findall(answer.content) if answer.status_code == 200 else []
    return int(found[-1]) if found else 0


def ha_vm(
    api: httpx.Client,
    name: str,
    host: str,
    guest: KernelGuest,
    priority: int,
    *,
    booted: bool = False,
) -> None:
    """A running HA VM on ``host`` with its disk on the shared domain (``booted``: its guest's
    heartbeat seen too, some 20 s of TCG boot: only for tests that watch it resume)."""
    spec = kernel_vm(name, guest, disk_gib=None, host=host)
    spec["disks"] = [{"name": "data", "size_gib": 0.25, "domain": DOMAIN}]
    made = api.post("/vms", json=spec)
    assert made.status_code == 201, made.text
    assert api.post(f"/vms/{name}/start").status_code == 200
    answer = api.put(f"/vms/{name}/ha", json={"enabled": True, "priority": priority})
    assert answer.status_code == 200, answer.text
    assert answer.json()["definition_saved_at"] is not None
    if booted:
        wait_until(lambda: heartbeat(api, name) > 1, 90, f"{name}'s heartbeat", interval=0.3)


def delete(api: httpx.Client, name: str) -> None:
    api.post(f"/vms/{name}/stop")
    wait_until(
        lambda: api.delete(f"/vms/{name}", params={"delete_disks": True}).status_code == 404,
        60,
        f"{name} deleted",
        interval=1,
    )


def host_ha(api: httpx.Client, name: str) -> dict[str, Any]:
    [found] = [h for h in api.get("/ha").json()["hosts"] if h["host"] == name]
    return found  # type: ignore[no-any-return]


def running_on(testbed: MultiHostTestbed, name: str) -> list[str]:
    """The test-bed hosts where libvirt runs domain ``name`` now."""
    found = []
    for host in HOSTS:
        listed = subprocess.run(["virsh", "-c", testbed.host(host).unix_uri, "list", "--name"],
                                capture_output=True, text=True, timeout=30)  # fmt: skip
        if listed.returncode == 0 and name in listed.stdout.split():
            found.append(host)
    return found


def defined_on(testbed: MultiHostTestbed, host: str) -> list[str]:
    listed = subprocess.run(
        ["virsh", "-c", testbed.host(host).unix_uri, "list", "--all", "--name"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return listed.stdout.split()


def until_connected(api: httpx.Client, name: str) -> None:
    wait_until(lambda: api.get(f"/hosts/{name}").json().get("connected"), 60,
               f"{name} connected again", interval=0.5)  # fmt: skip


def bmc_power(bmc: BmcSimulator, on: bool) -> None:
    """Switch h2 through its BMC, as any IPMI client would (the power cut)."""
    driver = IpmiPower("h2", bmc.address, bmc.port, BMC_USER, BMC_PASSWORD)
    asyncio.run(driver.power_on() if on else driver.power_off())
