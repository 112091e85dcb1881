"""Cluster networks on the three-host test bed, through a real Corral: a nat network realised
on every host. ``vxlan`` and ``bridge`` networks (built by the host agent), and a host lacking
a required network refused as a migration target, are in test_networks_vxlan.py."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from corral.testbed.corral_server import CorralServer
from corral.testbed.multihost import MultiHostTestbed
from tests.integration.networks._support import (
    create_network,
    delete_network,
    libvirt_bridge,
    states,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(multihost_corral: CorralServer) -> Iterator[httpx.Client]:
    with multihost_corral.client() as client:
        yield client


def test_a_nat_network_is_realised_on_every_host_and_removed_from_every_host(
    api: httpx.Client, testbed: MultiHostTestbed
) -> None:
    task = create_network(api, name="it-nat", kind="nat")
    assert task["state"] == "succeeded", task
    shown = api.get("/networks/it-nat").json()
    assert {h: s for h, (s, _r) in states(api, "it-nat").items()} == {
        "local": "applied", "h1": "applied", "h2": "applied", "h3": "applied"
    }  # fmt: skip
    for host in ("h1", "h2", "h3"):
        assert libvirt_bridge(testbed, host, "it-nat") == shown["bridge"]
    delete_network(api, "it-nat")
    for host in ("h1", "h2", "h3"):
        assert libvirt_bridge(testbed, host, "it-nat") is None
