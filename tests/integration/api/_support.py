"""Helpers for tests that drive a real Corral server."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
from websockets.sync.client import connect as ws_connect

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.vm_specs import kernel_vm

__all__ = ["SerialShell", "kernel_vm", "serial_log", "wait_log", "wait_state", "wait_task"]


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


class SerialShell:
    """Commands for the guest's shell on ttyS0, through ``/api/v1/vms/NAME/serial``."""

    def __init__(self, corral: CorralServer, name: str) -> None:
        self._url = corral.url.replace("http", "ws", 1) + f"/api/v1/vms/{name}/serial"
        self._headers = {"Authorization": f"Bearer {corral.token}"}
        self._count = 0

    def run(self, command: str, timeout: float = 60) -> bytes:
        """Run ``command``; what the console printed until it finished. The end marker is
        computed by the shell, so the echoed command line never contains it."""
        self._count += 1
        marker = f"SHELL-DONE-{self._count + 1000}".encode()
        seen = b""
        deadline = time.monotonic() + timeout
        with ws_connect(self._url, additional_headers=self._headers) as ws:
            ws.send(f"{command}; echo SHELL-DONE-$(({self._count} + 1000))\n".encode())
            while marker not in seen:
                data = ws.recv(timeout=max(0.1, deadline - time.monotonic()))
                seen += data if isinstance(data, bytes) else data.encode()
        return seen
