"""Simulated hosts for scale tests: one node description per host for libvirt's test driver.

``test:///PATH`` opens libvirt's test driver on the node described in PATH: its CPUs, its
memory and the domains it has (running). Each host gets its own file with a host UUID of its
own (Corral reads it as the host's identity, as libvirt's test driver reports none), so
hundreds of hosts with thousands of VMs come up in seconds, without a daemon. Corral accepts
such a URI only where ``allow_test_hosts`` is true and the file is in its
``simulated-hosts`` directory (``Settings.simulated_hosts_dir``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from lxml import etree


@dataclass(frozen=True)
class SimulatedHost:
    name: str
    uri: str
    host_uuid: str
    vms: tuple[str, ...]


def node_description(
    host_uuid: str, cpus: int, memory_mib: int, vms: list[tuple[str, str]], vm_memory_mib: int
) -> bytes:
    """The test driver's ``<node>``: CPUs, memory, and ``vms`` (name, uuid) with one vCPU
    and ``vm_memory_mib`` each, running."""
    node = etree.Element("node")
    etree.SubElement(node, "uuid").text = host_uuid  # read by Corral, ignored by libvirt
    cpu = etree.SubElement(node, "cpu")
    for tag, value in (
        ("nodes", 1), ("sockets", 1), ("cores", cpus), ("threads", 1), ("active", cpus),
        ("mhz", 2400), ("model", "x86_64"),
    ):  # fmt: skip
        etree.SubElement(cpu, tag).text = str(value)
    etree.SubElement(node, "memory").text = str(memory_mib * 1024)
    for name, vm_uuid in vms:
        dom = etree.SubElement(node, "domain", type="test")
        etree.SubElement(dom, "name").text = name
        etree.SubElement(dom, "uuid").text = vm_uuid
        etree.SubElement(dom, "memory", unit="MiB").text = str(vm_memory_mib)
        etree.SubElement(dom, "vcpu").text = "1"
        os_ = etree.SubElement(dom, "os")
        etree.SubElement(os_, "type").text = "hvm"
    return bytes(etree.tostring(node, pretty_print=True))


def write_hosts(
    directory: Path,
    count: int,
    *,
    vms: int = 0,
    cpus: int = 64,
    memory_mib: int = 256 * 1024,
    vm_memory_mib: int = 256,
    prefix: str = "sim",
) -> list[SimulatedHost]:
    """``count`` node descriptions in ``directory`` (hosts ``PREFIX-0001``…), with ``vms``
    running domains spread evenly over them (``PREFIX-0001-vm0001``…)."""
    directory.mkdir(parents=True, exist_ok=True)
    hosts = []
    for i in range(count):
        name = f"{prefix}-{i + 1:04d}"
        share = vms // count + (1 if i < vms % count else 0)
        domains = [(f"{name}-vm{j + 1:04d}", str(uuid.uuid4())) for j in range(share)]
        host_uuid = str(uuid.uuid4())
        path = directory / f"{name}.xml"
        path.write_bytes(node_description(host_uuid, cpus, memory_mib, domains, vm_memory_mib))
        hosts.append(SimulatedHost(name, f"test://{path}", host_uuid, tuple(d for d, _ in domains)))
    return hosts
