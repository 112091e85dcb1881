"""`corral vm show` lists every change waiting for the next start, the CPU topology included."""

from __future__ import annotations

from rich.console import Console

from corral.cli.output import vm_details
from corral.model.arch import CpuTopology
from corral.model.vm import NextStart, VmInfo, VmState


def test_vm_show_lists_a_pending_topology_with_the_sizes() -> None:
    vm = VmInfo(
        uuid="00000000-0000-0000-0000-000000000001",
        name="big",
        host="local",
        state=VmState.RUNNING,
        vcpus=2,
        memory_mib=512,
        next_start=NextStart(max_vcpus=4, topology=CpuTopology(sockets=1, cores=4, threads=1)),
    )
    console = Console(width=120, record=True)
    console.print(vm_details(vm))
    text = console.export_text()
    line = next(row for row in text.splitlines() if "Next start" in row)
    assert "max vCPUs 4" in line and "CPU topology 1 sockets x 4 cores x 1 threads" in line, line
