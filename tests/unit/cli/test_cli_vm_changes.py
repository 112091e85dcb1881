"""``corral vm edit``, ``vm disk|nic attach|detach``, the architecture options of ``vm create``
and the guest architectures of ``host show``.

Edits, disks and NICs run against the real app on shut-off VMs of the test driver (it cannot
change a running domain's devices). The architecture options and a host's guest
architectures stay canned (checked against /openapi.json): the test driver offers no s390x,
and kernel files are host paths."""

from __future__ import annotations

import json
from typing import Any

from corral.model.host import GuestArchInfo, HostCapabilities, HostInfo, MachineInfo
from corral.model.vm import Accelerator
from tests.unit.cli.conftest import CannedApi, RealApi, Run, Vms


def _sent(api: CannedApi | RealApi, method: str, path: str) -> tuple[Any, dict[str, str]]:
    request = api.requests_to(method, path)[-1]
    return (json.loads(request[2]) if request[2] else None), request[3]


def test_create_sends_architecture_and_cpu(run: Run, api: CannedApi) -> None:
    result = run(
        "vm", "create", "z1", "--arch", "s390x", "--machine", "s390-ccw-virtio",
        "--vcpus", "4", "--max-vcpus", "8", "--max-memory", "2G", "--cpu", "max",
        "--topology", "2x4x1", "--nested", "--kernel", "/k", "--cmdline", "console=ttysclp0",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body, _ = _sent(api, "POST", "/vms")
    assert body["arch"] == "s390x" and body["machine"] == "s390-ccw-virtio"
    assert (body["max_vcpus"], body["max_memory_mib"]) == (8, 2048)
    assert body["cpu"] == {
        "model": "max", "topology": {"sockets": 2, "cores": 4, "threads": 1}, "nested": True
    }  # fmt: skip
    wrong = run("vm", "create", "z2", "--vcpus", "4", "--topology", "1x2x1", "--kernel", "/k")
    assert wrong.exit_code == 2 and "equal 4" in wrong.stderr
    unknown = run("vm", "create", "z3", "--arch", "vax", "--kernel", "/k")
    assert unknown.exit_code == 2 and "arch" in unknown.stderr


def test_host_show_lists_guest_architectures(run: Run, api: CannedApi) -> None:
    guests = [
        GuestArchInfo(
            arch="s390x",
            emulator="/usr/bin/qemu-system-s390x",
            accelerators=[Accelerator.TCG],
            default_machine="s390-ccw-virtio",
            max_vcpus=248,
            console="ttysclp0",
            machines=[MachineInfo(name="s390-ccw-virtio", canonical="s390-ccw-virtio-7.2",
                                  max_vcpus=248)],
            cpu_models=["max", "qemu", "z900"],
        ),
    ]  # fmt: skip
    caps = HostCapabilities(
        hostname="h", arch="x86_64", cpus=2, memory_mib=4096, free_memory_mib=1024,
        accelerators=[Accelerator.TCG], libvirt_version="9.0.0", architectures=["s390x"],
        guests=guests,
    )  # fmt: skip
    api.state.hosts = {
        "h1": HostInfo(name="h1", uri="qemu:///system", connected=True, capabilities=caps)
    }
    shown = run("host", "show", "h1")
    assert shown.exit_code == 0, shown.output
    row = next(line for line in shown.stdout.splitlines() if line.startswith("s390x"))
    assert row.split()[:6] == ["s390x", "tcg", "s390-ccw-virtio", "248", "ttysclp0", "no"]
    detail = run("host", "show", "h1", "--arch", "s390x")
    assert "s390-ccw-virtio (= s390-ccw-virtio-7.2, 248 vCPUs)" in detail.stdout
    assert "max, qemu, z900" in detail.stdout
    assert run("host", "show", "h1", "--arch", "ppc64").exit_code == 2


def test_edit_sends_the_changes_and_says_how_they_applied(
    run_real: Run, real_api: RealApi, vms: Vms
) -> None:
    vms.make("cli-edit", vcpus=2)
    result = run_real(
        "vm", "edit", "cli-edit", "--vcpus", "4", "--memory", "1G", "--description", "x"
    )
    assert result.exit_code == 0, result.output
    body, _ = _sent(real_api, "PATCH", "/vms/cli-edit")
    assert body == {"vcpus": 4, "memory_mib": 1024, "description": "x"}
    assert "VM cli-edit: vCPUs 2 → 4" in result.stdout
    assert "— in its definition (it is shut off)" in result.stdout  # how it applied
    vm = vms.get("cli-edit")
    assert (vm["vcpus"], vm["memory_mib"], vm["description"]) == (4, 1024, "x")
    later = run_real(
        "vm", "edit", "cli-edit", "--max-vcpus", "8", "--topology", "2x4x1", "--next-start"
    )
    assert later.exit_code == 0, later.output
    body, _ = _sent(real_api, "PATCH", "/vms/cli-edit")
    assert body == {
        "max_vcpus": 8, "topology": {"sockets": 2, "cores": 4, "threads": 1}, "mode": "next_start"
    }  # fmt: skip
    assert vms.get("cli-edit")["max_vcpus"] == 8


def test_edit_refusals(run_real: Run, real_api: RealApi, vms: Vms) -> None:
    vms.make("cli-refuse")
    refused = run_real("vm", "edit", "cli-refuse", "--vcpus", "4", "--live")
    assert refused.exit_code == 1  # live changes need a running VM
    assert refused.stderr.startswith("error: ") and "cli-refuse" in refused.stderr
    assert vms.get("cli-refuse")["vcpus"] == 1
    sent = len(real_api.requests_to("PATCH", "/vms/cli-refuse"))
    assert run_real("vm", "edit", "cli-refuse").exit_code == 2  # nothing to change
    live_and_later = run_real("vm", "edit", "cli-refuse", "--vcpus", "2", "--live", "--next-start")
    assert live_and_later.exit_code == 2
    bad = run_real("vm", "edit", "cli-refuse", "--topology", "2by2")
    assert bad.exit_code == 2 and "SOCKETSxCORESxTHREADS" in bad.stderr
    above = run_real("vm", "edit", "cli-refuse", "--vcpus", "4", "--max-vcpus", "2")
    assert above.exit_code == 2 and "max_vcpus" in above.stderr
    assert len(real_api.requests_to("PATCH", "/vms/cli-refuse")) == sent  # usage: not sent


def test_disks_attach_and_detach(run_real: Run, real_api: RealApi, vms: Vms) -> None:
    vms.make("cli-disks")
    added = run_real("vm", "disk", "attach", "cli-disks", "data", "--size", "2G", "--bus", "scsi")
    assert added.exit_code == 0, added.output
    body, _ = _sent(real_api, "POST", "/vms/cli-disks/disks")
    assert body == {"name": "data", "size_gib": 2.0, "bus": "scsi"}
    (data,) = [d for d in vms.get("cli-disks")["disks"] if d["name"] == "data"]
    assert f"disk data ({data['target']}, cli-disks-data.qcow2) attached" in added.stdout
    assert run_real("vm", "disk", "attach", "cli-disks", "d2").exit_code == 2  # no source
    both = run_real(
        "vm", "disk", "attach", "cli-disks", "d2", "--size", "1G", "--volume", "v.qcow2"
    )
    assert both.exit_code == 2
    asked = run_real("vm", "disk", "detach", "cli-disks", "data", input="n\n")
    assert asked.exit_code == 1 and "Detach disk data from VM cli-disks" in asked.output
    gone = run_real(
        "vm", "disk", "detach", "cli-disks", "data", "--delete-volume", "--next-start", "--yes"
    )
    assert gone.exit_code == 0, gone.output
    _, params = _sent(real_api, "DELETE", "/vms/cli-disks/disks/data")
    assert params == {"delete_volume": "true", "mode": "next_start"}
    assert [d["name"] for d in vms.get("cli-disks")["disks"]] == ["root"]


def test_nics_attach_and_detach(run_real: Run, real_api: RealApi, vms: Vms) -> None:
    vms.make("cli-nics")
    added = run_real("vm", "nic", "attach", "cli-nics", "--network", "user", "--model", "e1000",
                     "--mac", "52:54:00:AA:BB:CC")  # fmt: skip
    assert added.exit_code == 0, added.output
    body, _ = _sent(real_api, "POST", "/vms/cli-nics/nics")
    assert body == {"network": "user", "model": "e1000", "mac": "52:54:00:aa:bb:cc"}
    assert "52:54:00:aa:bb:cc" in [n["mac"] for n in vms.get("cli-nics")["nics"]]
    gone = run_real("vm", "nic", "detach", "cli-nics", "52:54:00:aa:bb:cc", "--yes")
    assert gone.exit_code == 0, gone.output
    assert "network interface 52:54:00:aa:bb:cc detached" in gone.stdout
    assert "52:54:00:aa:bb:cc" not in [n["mac"] for n in vms.get("cli-nics")["nics"]]
