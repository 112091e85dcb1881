"""The migrate task driven through a fake adapter: success, failure with its explanation,
cancel → abort, the post-copy switch, and every step persisted before the call it announces."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from corral.errors import Cancelled, MigrationFailed
from corral.model.migration import MigrationInfo, MigrationRequest, MigrationStats
from corral.model.vm import VmState
from corral.services.migrations import migrate as migrate_module
from corral.services.migrations.machine import new_info
from corral.services.migrations.migrate import VmMigration
from corral.services.migrations.preflight import Checked, VmFacts
from corral.virt.transports import MigrationEndpoint, MigrationFlag, MigrationPlan

PLAN = MigrationPlan("tls", "qemu+tls://h2/system", frozenset({MigrationFlag.TLS}))


class FakePool:
    """A pool directory: volume names, seen by every host given the same one."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    async def create_blank_volume(self, name: str, size_bytes: int) -> None:
        self.names.add(name)

    async def find_volume(self, name: str) -> str | None:
        return name if name in self.names else None

    async def delete_volume(self, name: str) -> None:
        self.names.remove(name)


class FakeConsoles:
    def __init__(self, pool: FakePool) -> None:
        self.pool = pool

    async def delete_serial_log(self, name: str) -> None:
        self.pool.names.discard(f"{name}.serial.log")


class FakeHost:
    def __init__(self, name: str, pool: FakePool | None = None) -> None:
        self.name = name
        self.connected = True
        self.storage = pool or FakePool()
        self.consoles = FakeConsoles(self.storage)


class FakeMigration:
    """Runs until told to finish; ``stats`` returns the scripted readings in turn."""

    def __init__(self, readings: list[MigrationStats], log: list[str]) -> None:
        self.readings = list(readings)
        self.log = log
        self.finish = asyncio.Event()
        self.outcome: Exception | None = None
        self.destination = FakeHost("h2")

    async def run(self, plan: MigrationPlan) -> None:
        self.log.append("run")
        await self.finish.wait()
        if self.outcome is not None:
            raise self.outcome

    async def stats(self) -> MigrationStats | None:
        if not self.readings:
            self.finish.set()
            return None
        return self.readings.pop(0)

    async def abort(self) -> None:
        self.log.append("abort")
        self.outcome = MigrationFailed("operation aborted: job 'migration out' canceled", 78)
        self.finish.set()

    async def start_postcopy(self) -> None:
        self.log.append("postcopy")

    async def completed_stats(self) -> MigrationStats:
        return MigrationStats(time_elapsed_ms=1234, downtime_ms=56)

    async def failure_detail(self) -> str:
        return "Cannot write to TLS channel: Input/output error"


class FakeContext:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.cancel_requested = False
        self.reports: list[dict[str, Any]] = []

    def report(self, fraction: float | None = None, **fields: Any) -> None:
        self.reports.append({"progress": fraction, **fields})
        if "result" in fields:
            self.log.append("persist:" + fields["result"]["migration"]["phase"])

    async def settle(self) -> None:
        return None


class FakeInventory:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.hosts = None

    async def db(self, fn: Callable[[Any], Any]) -> None:
        self.log.append("inventory: host=h2")


class NoLogs:
    async def libvirtd_errors(self, host: str, since: object) -> tuple[str, ...]:
        return ("operation failed: job 'migration out' failed: Cannot write to TLS channel",)


def _service(log: list[str], fake: FakeMigration) -> VmMigration:
    service = VmMigration(
        FakeInventory(log),  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        {},
        None,  # type: ignore[arg-type]
        NoLogs(),  # type: ignore[arg-type]
    )
    service.migration_factory = lambda *_: fake  # type: ignore[assignment,return-value]
    return service


def _checked(shared_pool: bool = False) -> Checked:
    vm = VmFacts("web1", "u1", VmState.RUNNING, 256, "x86_64", None)
    end = MigrationEndpoint("h1", "198.18.0.1", "qemu+tls://198.18.0.1/system", True)
    source = FakeHost("h1")
    source.storage.names.add("web1.serial.log")
    destination = FakeHost("h2", source.storage if shared_pool else None)
    return Checked(vm, source, destination, end, end)  # type: ignore[arg-type]


def _info(**request: Any) -> MigrationInfo:
    return new_info(
        vm="web1",
        uuid="u1",
        source="h1",
        destination="h2",
        transport="tls",
        encrypted=True,
        request=MigrationRequest(to="h2", **request),
    )


READINGS = [
    MigrationStats(iteration=1, data_total=1000, data_processed=400, data_remaining=600),
    MigrationStats(iteration=2, data_total=1000, data_processed=1100, data_remaining=100),
]


@pytest.fixture(autouse=True)
def fast_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migrate_module, "POLL_S", 0.01)
    monkeypatch.setattr(migrate_module, "TICK_S", 0.01)


async def test_success_persists_migrating_before_libvirt_runs_and_updates_the_inventory() -> None:
    log: list[str] = []
    fake = FakeMigration(READINGS, log)
    ctx = FakeContext(log)
    result = await _service(log, fake)._run(ctx, _info(), _checked(), PLAN)  # type: ignore[arg-type]
    assert log.index("persist:migrating") < log.index("run")
    assert log.index("inventory: host=h2") < log.index("persist:completed")
    assert [s["phase"] for s in result["migration"]["steps"]] == [
        "checking", "prepared", "migrating", "finishing", "completed",
    ]  # fmt: skip
    assert (result["total_time_ms"], result["downtime_ms"]) == (1234, 56)
    progress = [r for r in ctx.reports if r.get("bytes_done")]
    assert progress[0]["bytes_done"] == 400 and progress[0]["bytes_total"] == 1000
    assert progress[0]["phase"] == "h1 → h2 over tls: pass 1"
    assert ctx.reports[-1]["phase"] == "VM web1 runs on h2 (1.2 s, downtime 56 ms)"


@pytest.mark.parametrize("shared_pool", [False, True])
async def test_the_source_keeps_no_serial_log_unless_it_is_the_destinations(
    shared_pool: bool,
) -> None:
    log: list[str] = []
    checked = _checked(shared_pool)
    await _service(log, FakeMigration(READINGS, log))._run(FakeContext(log), _info(), checked, PLAN)  # type: ignore[arg-type]
    assert ("web1.serial.log" in checked.source.storage.names) is shared_pool  # type: ignore[attr-defined]
    assert not any(n.startswith("_probe.") for n in checked.source.storage.names)  # type: ignore[attr-defined]


async def test_a_failure_is_explained_and_the_vm_stays() -> None:
    log: list[str] = []
    fake = FakeMigration([], log)
    fake.outcome = MigrationFailed(
        "internal error: qemu unexpectedly closed the monitor: load of migration failed"
    )
    service = _service(log, fake)
    info = _info()
    with pytest.raises(MigrationFailed) as caught:
        await service._run(FakeContext(log), info, _checked(), PLAN)  # type: ignore[arg-type]
    assert "the encrypted migration stream from h1 to h2 broke" in caught.value.message
    assert "QEMU on h1: Cannot write to TLS channel" in caught.value.message
    assert "h1's libvirtd log: operation failed" in caught.value.message
    assert info.phase == "failed" and info.error == caught.value.message
    assert "inventory: host=h2" not in log


async def test_cancel_aborts_the_job_and_the_vm_stays() -> None:
    log: list[str] = []
    fake = FakeMigration([MigrationStats(iteration=1)] * 1000, log)
    ctx = FakeContext(log)
    info = _info()
    service = _service(log, fake)
    runner = asyncio.create_task(service._run(ctx, info, _checked(), PLAN))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    ctx.cancel_requested = True
    with pytest.raises(Cancelled, match="VM web1 keeps running on h1"):
        await runner
    assert "abort" in log
    assert [s.phase for s in info.steps][-2:] == ["aborting", "cancelled"]


async def test_postcopy_switch_when_pre_copy_stalls() -> None:
    log: list[str] = []
    stalled = [
        MigrationStats(iteration=i, data_total=1000, data_remaining=300) for i in (1, 2, 3, 3, 3, 3)
    ]
    fake = FakeMigration(stalled, log)
    info = _info(postcopy=True)
    await _service(log, fake)._run(FakeContext(log), info, _checked(), PLAN)  # type: ignore[arg-type]
    assert log.count("postcopy") == 1
    assert [s.phase for s in info.steps] == [
        "checking", "prepared", "migrating", "postcopy", "finishing", "completed",
    ]  # fmt: skip


async def test_no_postcopy_unless_asked() -> None:
    log: list[str] = []
    stalled = [MigrationStats(iteration=9, data_total=1000, data_remaining=300)] * 5
    await _service(log, FakeMigration(stalled, log))._run(
        FakeContext(log),  # type: ignore[arg-type]
        _info(),
        _checked(),
        PLAN,
    )
    assert "postcopy" not in log
