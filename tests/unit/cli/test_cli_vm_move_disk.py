"""``corral vm move-disk``: what it sends, the progress bar in bytes, what it prints; refusals
come from the real app (test driver), the copy itself is canned (its answers checked against
/openapi.json): the test driver has no block jobs."""

from __future__ import annotations

import json

from corral.model.vm import VmState
from tests.unit.cli.canned_api import vm_info
from tests.unit.cli.conftest import CannedApi, Run, Vms

MOVED = {
    "state": "succeeded",
    "progress": 1,
    "phase": "done",
    "bytes_done": 512 * 2**20,
    "bytes_total": 512 * 2**20,
    "result": {
        "vm": "web1",
        "disk": "vdb",
        "from": "local",
        "to": "shared",
        "volume": "web1-data.qcow2",
        "path": "/srv/shared/web1-data.qcow2",
        "live": True,
        "source": "deleted: /var/lib/libvirt/corral/images/web1-data.qcow2",
    },
}


def test_move_disk_sends_the_target_and_shows_bytes(run: Run, api: CannedApi) -> None:
    api.state.vms["web1"] = vm_info("web1", VmState.RUNNING)
    api.state.task_plans["vm.disk.move"] = [
        {
            "state": "running",
            "phase": "copying (the guest keeps running)",
            "progress": 0.4,
            "bytes_done": 200 * 2**20,
            "bytes_total": 512 * 2**20,
        },
        MOVED,
    ]
    result = run("vm", "move-disk", "web1", "vdb", "--to", "shared")
    assert result.exit_code == 0, result.output
    [(_m, _p, body, _h)] = api.requests_to("POST", "/vms/web1/disks/vdb/move")
    assert json.loads(str(body)) == {"to": "shared", "keep_source": False}
    assert "moved disk vdb of VM web1 to storage domain shared live" in result.stdout
    assert "deleted: /var/lib/libvirt/corral/images/web1-data.qcow2" in result.stdout
    assert "512.0/512.0 MiB" in result.stderr


def test_move_disk_keep_source_and_no_wait(run: Run, api: CannedApi) -> None:
    api.state.vms["web1"] = vm_info("web1", VmState.SHUTOFF)
    result = run("vm", "move-disk", "web1", "data", "--to", "shared", "--keep-source",
                 "--bandwidth", "20", "--no-wait")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().startswith("task-")
    [(_m, _p, body, _h)] = api.requests_to("POST", "/vms/web1/disks/data/move")
    assert json.loads(str(body)) == {"to": "shared", "keep_source": True, "bandwidth_mib_s": 20}
    zero = run("vm", "move-disk", "web1", "data", "--to", "shared", "--bandwidth", "0")
    assert zero.exit_code == 2
    bad = run("vm", "move-disk", "web1", "data", "--to", "no/such")
    assert bad.exit_code == 2 and not api.requests_to("POST", "/vms/web1/disks/data/move")[1:]


def test_move_disk_refusals_print_the_api_detail(run_real: Run, vms: Vms) -> None:
    vms.make("cli-mover")
    here = run_real("vm", "move-disk", "cli-mover", "vda", "--to", "local")
    assert here.exit_code == 1
    assert "is on storage domain local already" in here.stderr
    nowhere = run_real("vm", "move-disk", "cli-mover", "vda", "--to", "nowhere")
    assert nowhere.exit_code == 1 and "nowhere" in nowhere.stderr
    missing = run_real("vm", "move-disk", "cli-mover", "vdz", "--to", "local")
    assert missing.exit_code == 1 and "has no disk 'vdz'" in missing.stderr
