"""``corral volume list|delete`` against the real app on libvirt's test driver."""

from __future__ import annotations

import libvirt
from typer.testing import CliRunner

from corral.cli.main import app
from tests.unit._test_pool import make_raw_volume, pool
from tests.unit.cli.conftest import RealApi, Run, Vms

__all__ = ["pool"]  # a fixture, used by name


def test_list_then_delete_what_nothing_uses(
    run_real: Run, vms: Vms, pool: libvirt.virStoragePool
) -> None:
    vm = vms.make("cli-vol-user")
    [disk] = [d["name"] for d in vms.get(vm)["disks"]]
    disk_volume = next(v for v in pool.listVolumes() if v.startswith("cli-vol-user"))
    make_raw_volume(pool, "cli-vol-left.qcow2")
    listing = run_real("volume", "list", "--host", "test")
    assert listing.exit_code == 0, listing.output
    lines = listing.stdout.splitlines()
    header = ["NAME", "DOMAIN", "HOST", "FORMAT", "SIZE", "ALLOCATED", "USED", "BY"]
    assert lines[0].split() == header
    left = next(line.split() for line in lines if line.startswith("cli-vol-left.qcow2 "))
    assert left[:4] == ["cli-vol-left.qcow2", "local", "test", "raw"]
    assert left[-1] == "unused"
    used = next(line.split() for line in lines if line.startswith(disk_volume + " "))
    assert used[-1] == vm, (disk, used)
    refused = run_real("volume", "delete", "test", disk_volume, "--yes")
    assert refused.exit_code == 1
    assert f"is used by VM(s) {vm}" in refused.stderr
    assert run_real("volume", "delete", "test", "cli-vol-left.qcow2", input="n\n").exit_code == 1
    assert "cli-vol-left.qcow2" in pool.listVolumes()  # not confirmed: kept
    deleted = run_real("volume", "delete", "test", "cli-vol-left.qcow2", "--yes")
    assert deleted.exit_code == 0, deleted.output
    assert deleted.stdout.strip() == "deleted volume cli-vol-left.qcow2 on host test"
    assert "cli-vol-left.qcow2" not in pool.listVolumes()
    unknown = run_real("volume", "delete", "test", "cli-vol-left.qcow2", "--yes")
    assert unknown.exit_code == 1 and "corral volume list --host test" in unknown.stderr


def test_an_operator_is_refused(real_api: RealApi, pool: libvirt.virStoragePool) -> None:
    with real_api.client() as client:
        made = client.post(
            "/users",
            json={"name": "vol-op", "password": "a long enough password 2", "role": "operator"},
        )
        assert made.status_code == 201, made.text
    token = real_api.login("vol-op", "a long enough password 2")["secret"]
    make_raw_volume(pool, "cli-vol-guarded.qcow2")
    try:
        env = {**real_api.env(), "CORRAL_TOKEN": token}
        for args in (["list"], ["delete", "test", "cli-vol-guarded.qcow2", "--yes"]):
            result = CliRunner().invoke(app, ["volume", *args], env=env)
            assert result.exit_code == 1, result.output
            assert "admin" in result.stderr
        assert "cli-vol-guarded.qcow2" in pool.listVolumes()
    finally:
        pool.storageVolLookupByName("cli-vol-guarded.qcow2").delete(0)
