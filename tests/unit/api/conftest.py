"""The API on libvirt's test:///default driver: fast, no guests, real services and store."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from corral.api.app import create_app
from corral.config import Settings
from corral.errors import Conflict
from corral.model.auth import Role
from corral.services.runtime import Services
from corral.testbed.bmc import BmcSimulator, free_udp_port
from corral.testbed.multihost import MultiHostTestbed

PASSWORD = "correct-horse-battery-staple"
BMC_USER = "corral"
BMC_PASSWORD = "S3cret-BMC-pw"
#: A node file for libvirt's test driver: a host distinct from test:///default.
NODE_XML = (
    "<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>2</cores><threads>1</threads>"
    "<active>2</active><mhz>2000</mhz></cpu><memory>4194304</memory></node>"
)


@dataclass
class Api:
    client: TestClient
    services: Services
    tokens: dict[Role, str]

    def headers(self, role: Role = Role.ADMIN) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@contextmanager
def running_api(data_dir: Path, **overrides: Any) -> Iterator[Api]:
    """The real app on libvirt's test driver with a user of each role logged in; ``overrides``
    change the settings (the local host is ``test:///default`` unless they say otherwise)."""
    options: dict[str, Any] = {
        "data_dir": data_dir,
        "local_host_name": "test",
        "local_host_uri": "test:///default",
        "pool_dir": str(data_dir / "pool"),
        "reconcile_interval_s": 3600,
        # These tests add libvirt's test driver as a host through the API.
        "allow_test_hosts": True,
        **overrides,
    }
    settings = Settings(**options)
    services = Services(settings)
    for role in Role:
        with contextlib.suppress(Conflict):  # a restart on the same data_dir keeps its users
            services.auth.create_user_sync(role.value, PASSWORD, role)
    with TestClient(create_app(settings, services)) as client:
        tokens = {}
        for role in Role:
            answer = client.post(
                "/api/v1/auth/login", json={"username": role.value, "password": PASSWORD}
            )
            assert answer.status_code == 201, answer.text
            tokens[role] = answer.json()["secret"]
        yield Api(client, services, tokens)


#: A VM the console tests open: Corral gives it a VNC screen (libvirt's own test domain "test"
#: has no graphics device, and consoles of a VM without a screen are refused up front), which
#: the test driver cannot hand over.
SCREEN_VM = "con-screen"


def ensure_screen_vm(api: Api) -> str:
    """``SCREEN_VM``, created and started on the test driver once per app."""
    headers = api.headers()
    if api.client.get(f"/api/v1/vms/{SCREEN_VM}", headers=headers).status_code == 404:
        spec = {"name": SCREEN_VM, "disks": [{"size_gib": 1}], "nics": []}
        made = api.client.post("/api/v1/vms", json=spec, headers=headers)
        assert made.status_code == 201, made.text
        started = api.client.post(f"/api/v1/vms/{SCREEN_VM}/start", headers=headers)
        assert started.status_code == 200, started.text
    return SCREEN_VM


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One app per test module: argon2 and migrations are too slow to repeat per test; tests
    that change state use names of their own."""
    with running_api(tmp_path_factory.mktemp("api")) as running:
        yield running


@pytest.fixture(scope="module")
def bmc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BmcSimulator]:
    """A real BMC: OpenIPMI's ``ipmi_sim`` on loopback (user ``BMC_USER``, ``BMC_PASSWORD``).
    Its chassis hook would switch a test-bed host that is never brought up here: the unit
    tests use it for what a BMC answers before that (a refused login)."""
    base = tmp_path_factory.mktemp("bmc")
    bed = MultiHostTestbed(base / "bed", hosts=1, slot=250)
    sim = BmcSimulator(
        bed, "h1", base / "sim", address="127.0.0.1", port=free_udp_port(), user=BMC_USER,
        password=BMC_PASSWORD,
    )  # fmt: skip
    with sim:
        yield sim
