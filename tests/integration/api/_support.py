"""Helpers for tests that drive a real Corral server."""

from __future__ import annotations

import re
from typing import Any

import httpx

from corral.testbed.guest_domains import wait_until
from corral.testbed.vm_specs import kernel_vm

__all__ = ["kernel_vm", "serial_log", "wait_log", "wait_state", "wait_task"]


def wait_task(client: httpx.Client, task_id: str, timeout: float = 120) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        task: dict[str, Any] = client.get(f"/tasks/{task_id}").json()
        return task if task["state"] in ("succeeded", "failed", "cancelled") else None

    return wait_until(finished, timeout, f"task {task_id} to finish", interval=0.2)


def serial_log(client: httpx.Client, name: str) -> bytes:
    answer = client.get(f"/vms/{name}/log")
    answer.raise_for_status()
    return answer.content


def wait_log(
    client: httpx.Client, name: str, pattern: bytes, timeout: float = 90, start: int = 0
) -> re.Match[bytes]:
    regex = re.compile(pattern)

    def found() -> re.Match[bytes] | None:
        return regex.search(serial_log(client, name), start)

    return wait_until(found, timeout, f"{pattern!r} in the serial log of {name}", interval=0.25)


def wait_state(client: httpx.Client, name: str, state: str, timeout: float = 60) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        vm: dict[str, Any] = client.get(f"/vms/{name}").json()
        return vm if vm.get("state") == state else None

    return wait_until(reached, timeout, f"VM {name} to be {state}", interval=0.2)
