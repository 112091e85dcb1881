"""One host's apply on libvirt's test driver, with a host agent that answers as told: what
a failure at each phase leaves behind (nothing: the host is as it was)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import libvirt
import pytest

from corral.errors import HostError
from corral.model.network import NetworkHostState, NetworkKind
from corral.services.networks._plan import ROLLBACK_AFTER_S, Intent, plan_host
from corral.services.networks.apply import HostApply
from corral.virt import LibvirtHost

SEG = Intent("d" * 32, "seg-apply", NetworkKind.VXLAN, vni=4711)
NAT = Intent("e" * 32, "nat-apply", NetworkKind.NAT)
ADDRESSES = {"test": "198.18.9.1", "other": "198.18.9.2"}


class Agent:
    """Records the calls; ``fail`` names the op that fails."""

    def __init__(self, fail: str | None = None) -> None:
        self.fail = fail
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def __call__(
        self, host_name: str, op: str, args: dict[str, Any], *, timeout_s: float
    ) -> dict[str, Any]:
        self.calls.append((op, args))
        if op == self.fail:
            raise HostError(f"host agent on {host_name}: {op}: connection lost")
        return {}


@pytest.fixture
async def host() -> AsyncIterator[LibvirtHost]:
    found = LibvirtHost("test", "test:///default")
    await found.connect()
    yield found
    await found.close()


def _networks() -> set[str]:
    conn = libvirt.open("test:///default")
    try:
        return {n.name() for n in conn.listAllNetworks(0)}
    finally:
        conn.close()


async def test_a_confirmed_apply_leaves_the_networks_and_confirms_the_change(
    host: LibvirtHost,
) -> None:
    agent = Agent()
    plan = plan_host("test", [SEG, NAT], {}, ADDRESSES)
    outcomes = await HostApply(host, plan, agent).run()
    assert {n: o.state for n, o in outcomes.items()} == {
        "seg-apply": NetworkHostState.APPLIED,
        "nat-apply": NetworkHostState.APPLIED,
    }
    (op1, apply), (op2, confirm) = agent.calls
    assert (op1, op2) == ("net.apply", "net.confirm")
    assert apply["rollback_after_s"] == ROLLBACK_AFTER_S == 20
    assert apply["bridges"][0]["vxlan"]["peers"] == ["198.18.9.2"]
    assert confirm == {"change_id": apply["change_id"]}
    assert {"seg-apply", "nat-apply"} <= _networks()
    # Nothing wanted any more: the libvirt networks go, the agent gets the empty set.
    emptied = Agent()
    await HostApply(host, plan_host("test", [], {}, ADDRESSES), emptied).run()
    assert emptied.calls[0][1]["bridges"] == []
    assert not {"seg-apply", "nat-apply"} & _networks()


@pytest.mark.parametrize("fail", ["net.apply", "net.confirm"])
async def test_a_failed_phase_leaves_the_host_as_it_was(host: LibvirtHost, fail: str) -> None:
    agent = Agent(fail)
    before = _networks()
    apply = HostApply(host, plan_host("test", [SEG, NAT], {}, ADDRESSES), agent)
    outcomes = await apply.run()
    assert _networks() == before
    assert all(o.state is NetworkHostState.FAILED for o in outcomes.values())
    reason = str(outcomes["seg-apply"].reason)
    if fail == "net.confirm":
        assert "could not reach host test after the change" in reason
        assert "by itself within 20 s" in reason
    else:
        assert [op for op, _ in agent.calls] == ["net.apply"]
        assert "connection lost" in reason
    assert apply.error == reason
