"""Power services on libvirt's test:///default driver with a real BMC simulator: auto mode
applies plans by itself and manual mode only recommends; the sampler's readings; secrets
sealed at rest; the drivers' refusals in words, without secrets; the utilisation charts."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from corral import store
from corral.errors import Conflict, OperationTimeout, PowerDriverFailed
from corral.model.host import SshAccess
from corral.model.power import HostSample, PowerState, SshDriver, WakeOnLan
from corral.services.power.drivers.ipmi import IpmiPower
from corral.services.power.drivers.ssh import SshPower
from corral.services.power.drivers.wol import WolPower
from corral.services.power.rates import rates
from corral.services.power.secrets import SecretBox
from corral.store.coltypes import utcnow
from corral.testbed.bmc import BmcSimulator, free_udp_port
from corral.virt.types import DomainCounters, NodeCounters
from corral.web.charts import add_markers, line_chart
from tests.unit.api.conftest import BMC_PASSWORD, BMC_USER, Api, api, bmc

__all__ = ["api", "bmc"]  # fixtures

HOST = "test"


# -- secrets -------------------------------------------------------------------------------------
def test_secrets_are_sealed_with_a_private_key_and_open_only_with_it(tmp_path: Path) -> None:
    box = SecretBox(tmp_path)
    token = box.seal({"password": BMC_PASSWORD})
    assert BMC_PASSWORD not in token
    assert box.open(token) == {"password": BMC_PASSWORD}
    assert stat.S_IMODE(os.stat(box.key_path).st_mode) == 0o600
    # The same data directory later (a restart) opens it; another key does not.
    assert SecretBox(tmp_path).open(token) == {"password": BMC_PASSWORD}
    with pytest.raises(Conflict) as refused:
        SecretBox(tmp_path / "other").open(token)
    assert "cannot be decrypted" in refused.value.message
    assert "set the host's driver again" in refused.value.message


def test_a_driver_never_shows_its_password() -> None:
    driver = IpmiPower("h3", "127.0.0.1", 623, BMC_USER, BMC_PASSWORD)
    assert BMC_PASSWORD not in repr(driver) and BMC_PASSWORD not in str(vars(driver).keys())


# -- drivers -------------------------------------------------------------------------------------
async def test_ipmi_refusal_and_silence_are_errors_in_words(bmc: BmcSimulator) -> None:
    wrong = IpmiPower("h3", bmc.address, bmc.port, BMC_USER, "Not-the-pw1")
    with pytest.raises(PowerDriverFailed) as refused:
        await wrong.power_off()
    text = refused.value.message
    assert text.startswith(f"power off host h3: the BMC of host h3 at 127.0.0.1:{bmc.port}")
    assert "refused the login" in text and "Not-the-pw1" not in text
    right = IpmiPower("h3", bmc.address, bmc.port, BMC_USER, BMC_PASSWORD)
    # The simulated host was never brought up: its BMC reports it off, twice in a row (a
    # second session to the same BMC works, see the driver's note on pyghmi).
    assert await right.status() is PowerState.OFF
    assert await right.status() is PowerState.OFF
    silent = IpmiPower("h3", "127.0.0.1", free_udp_port(), BMC_USER, BMC_PASSWORD)
    with pytest.raises((PowerDriverFailed, OperationTimeout)) as timed_out:
        await silent.status()
    assert "did not answer" in str(timed_out.value)


async def test_wake_on_lan_sends_a_real_magic_packet() -> None:
    receiver = await asyncio.to_thread(_udp_receiver)
    sock, port = receiver
    try:
        wol = WolPower("h2", WakeOnLan(mac="52:54:00:12:34:56", broadcast="127.0.0.1", port=port))
        await wol.power_on()
        packet = await asyncio.to_thread(sock.recv, 1024)
    finally:
        sock.close()
    assert packet == b"\xff" * 6 + bytes.fromhex("525400123456") * 16
    with pytest.raises(PowerDriverFailed) as refused:
        await wol.power_off()
    assert "can only wake it" in refused.value.message


def _udp_receiver() -> tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    port: int = sock.getsockname()[1]
    return sock, port


async def test_ssh_without_wake_on_lan_says_nothing_can_wake_the_host(tmp_path: Path) -> None:
    access = SshAccess(destination="root@198.51.100.7", port=22, key_path=str(tmp_path / "k"))
    driver = SshPower("h4", SshDriver(driver="ssh"), access, tmp_path / "known_hosts")
    assert driver.can_power_off and not driver.can_power_on
    with pytest.raises(PowerDriverFailed) as refused:
        await driver.power_on()
    assert "nothing can wake it" in refused.value.message


# -- rates and the sampler -----------------------------------------------------------------------
def _reading(at: float, busy_ns: int, domains: list[tuple[str, int]]) -> NodeCounters:
    return NodeCounters(
        taken=at,
        cpus=2,
        cpu_busy_ns=busy_ns,
        cpu_total_ns=int(at * 2e9),
        memory_total_mib=8192,
        memory_available_mib=6144,
        domains=tuple(
            DomainCounters(uuid=n, name=n, vcpus=1, cpu_time_ns=t, memory_mib=512)
            for n, t in domains
        ),
    )


def test_rates_from_the_node_or_from_the_vms() -> None:
    before = _reading(100.0, 0, [("a", 0), ("b", 5_000_000_000)])
    after = _reading(110.0, 5_000_000_000, [("a", 5_000_000_000), ("b", 5_000_000_000)])
    node = rates(before, after, "node")
    assert node is not None and node.cpu == pytest.approx(0.25)
    assert node.memory_used_mib == 2048
    assert {v.name: v.cpu for v in node.vms} == {"a": pytest.approx(0.5), "b": 0.0}
    domains = rates(before, after, "domains")
    assert domains is not None and domains.cpu == pytest.approx(0.25)
    assert domains.memory_used_mib == 1024  # the VMs' memory, not the machine's
    # A domain started anew (its counter went back) gives no figure; no time, no rate.
    restarted = _reading(120.0, 6_000_000_000, [("a", 1), ("b", 5_000_000_000)])
    again = rates(after, restarted, "domains")
    assert again is not None and [v.name for v in again.vms] == ["b"]
    assert rates(after, after, "node") is None


async def test_the_sampler_needs_two_readings_then_stores_samples(api: Api) -> None:
    sampler = api.services.power.sampler
    await asyncio.wrap_future(api.client.portal.start_task_soon(sampler.sample_once))  # type: ignore[union-attr]
    taken = await asyncio.wrap_future(
        api.client.portal.start_task_soon(sampler.sample_once)  # type: ignore[union-attr]
    )
    [sample] = [s for s in taken if s.host == HOST]
    assert 0.0 <= sample.cpu <= 1.0 and sample.memory_total_mib > 0
    assert sampler.latest[HOST] == sample
    stored = api.services.db.sync(lambda s: store.host_samples(s, sample.at))
    assert any(s.host == HOST and s.at == sample.at for s in stored)


# -- auto and manual -----------------------------------------------------------------------------
def _tasks(api: Api) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = api.client.get("/api/v1/tasks", headers=api.headers()).json()[
        "items"
    ]
    return [t for t in tasks if t["kind"] == "power.apply"]


def _empty_and_enrolled(api: Api) -> None:
    """The local test host without its domain (a host to put in standby must be empty) and
    with an address on record, as an enrolled host has (plans touch enrolled hosts only)."""
    h = api.headers()
    for vm in api.client.get("/api/v1/vms", headers=h).json()["items"]:
        api.client.post(f"/api/v1/vms/{vm['name']}/stop", json={"force": True}, headers=h)
        answer = api.client.delete(f"/api/v1/vms/{vm['name']}", headers=h)
        assert answer.status_code == 204, answer.text

    def enrolled(session: Any) -> None:
        store.get_host(session, HOST).address = "127.0.0.1"

    api.services.db.sync(enrolled)


def test_manual_mode_only_recommends_and_auto_mode_applies(api: Api, bmc: BmcSimulator) -> None:
    _empty_and_enrolled(api)
    h = api.headers()
    # A BMC that refuses this password: applying the plan fails at the switch, visibly.
    driver = {"driver": "ipmi", "address": bmc.address, "port": bmc.port, "user": BMC_USER,
              "password": "Wrong-pw-9"}  # fmt: skip
    answer = api.client.put(f"/api/v1/hosts/{HOST}/power", json={"driver": driver}, headers=h)
    assert answer.status_code == 200, answer.text
    answer = api.client.patch("/api/v1/cluster/settings", json={"sustained_minutes": 1}, headers=h)
    assert answer.status_code == 200, answer.text
    now = utcnow()
    idle = [
        HostSample(host=HOST, at=now - timedelta(seconds=s), cpu=0.01, memory_used_mib=0,
                   memory_total_mib=8192)
        for s in (90, 60, 30, 0)
    ]  # fmt: skip
    api.services.db.sync(lambda s: store.add_samples(s, idle, []))
    plan = api.client.get("/api/v1/power/plan", headers=h).json()
    assert plan["plan"]["standby"] == [HOST], (plan["plan"], plan["notes"])
    assert plan["mode"] == "manual"

    tick = api.services.power.auto.tick
    assert api.client.portal.call(tick) is None  # type: ignore[union-attr]
    assert _tasks(api) == []

    assert api.client.patch(
        "/api/v1/cluster/settings", json={"power_policy": "auto"}, headers=h
    ).is_success
    started = api.client.portal.call(tick)  # type: ignore[union-attr]
    deadline = time.monotonic() + 30
    while not (done := [t for t in _tasks(api) if t["state"] in ("failed", "succeeded")]):
        assert time.monotonic() < deadline, _tasks(api)
        time.sleep(0.05)
    [task] = done
    assert started in (None, task["id"])  # the sampler's own tick may have been first
    assert task["created_by"] == "corral-power-policy"
    assert task["state"] == "failed" and "refused the login" in task["error"], task
    assert f"host {HOST} is running and connected; its VMs were not touched" in task["error"]
    assert api.client.get(f"/api/v1/hosts/{HOST}", headers=h).json()["standby"] is False
    # The failed attempt is a change of placement: the old idle samples no longer count, so
    # the policy does not try again at once.
    assert api.client.portal.call(tick) is None  # type: ignore[union-attr]
    api.client.patch("/api/v1/cluster/settings", json={"power_policy": "manual"}, headers=h)


# -- charts ----------------------------------------------------------------------------------------
def test_line_chart_places_points_in_the_frame_and_marks_events() -> None:
    since = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    until = since + timedelta(hours=1)
    series = {
        "h1": [(since, 0.0), (since + timedelta(minutes=30), 50.0), (until, 100.0)],
        "h2": [(since - timedelta(hours=2), 40.0)],  # outside the window: no line
    }
    chart = line_chart("CPU", "%", series, since, until, top=100)
    [line] = chart.lines
    assert line.name == "h1" and line.last == "100"
    points = [tuple(map(float, p.split(","))) for p in line.points.split()]
    assert points[0] == (chart.left, chart.bottom) and points[-1] == (chart.right, chart.top)
    assert points[1][0] == pytest.approx((chart.left + chart.right) / 2, abs=0.1)
    assert [t.label for t in chart.y_ticks] == ["0", "25", "50", "75", "100"]
    assert chart.x_ticks[0].label == "12:00" and len(chart.x_ticks) <= 9
    add_markers(chart, [(since + timedelta(minutes=15), "web1: h1 → h2"),
                        (since - timedelta(minutes=1), "too early")], since, until)  # fmt: skip
    assert [m.label for m in chart.markers] == ["web1: h1 → h2"]
    watts = line_chart("W", "W", {"cluster": [(since, 137.0)]}, since, until)
    assert watts.y_ticks[-1].label == "200"  # a round ceiling above the data
    assert line_chart("W", "W", {}, since, until).empty
