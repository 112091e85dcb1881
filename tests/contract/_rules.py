"""The request rules JSON Schema cannot state, applied to the fuzzer's schema-valid cases.

Everything else a request must satisfy is in the OpenAPI document. These are not:

- disk names must be unique within a VM (JSON Schema has no "unique by property");
- a VM's sizes (create and edit): vcpus at most max_vcpus, memory_mib at most max_memory_mib,
  and the CPU topology's product the vCPU count (JSON Schema compares no two fields);
- the transports listing takes a pair of hosts or none (``source`` and ``destination`` go
  together, and name two hosts), and a serial log's tail is counted in bytes or in lines, not both;
- a list's ``cursor`` must be one the same query issued (a schema cannot say which strings a
  server issued): positive cases go without one, and a page with a cursor is asked for by the
  unit tests (tests/unit/api/test_vm_paging.py and the other list routes' tests);
- a wait-screen template must be a decodable PNG (``contentMediaType: image/png`` is an
  annotation; schemathesis encodes random text instead). Its coverage phase also gives up on
  a base64 string near the 5.6-million-character limit and sends ``0`` as the body while still
  calling the case positive; such a case gets a real template too.

Only positive cases are touched by those: negative ones are meant to break rules. Every case,
though, is kept on this machine (``_confine``).
"""

from __future__ import annotations

import base64
import io
import re
import secrets
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image
from schemathesis import Case, GenerationMode

from corral.backup.keys import new_key_text
from corral.model.host import HOST_ADDRESS_PATTERN, LIBVIRT_URI_PATTERN
from corral.model.power import IPV4_PATTERN
from corral.model.vm import VmSpec


def _positive(case: Case) -> bool:
    meta = case.meta
    return meta is not None and meta.generation.mode is GenerationMode.POSITIVE


def _unique_disk_names(body: dict[str, Any]) -> None:
    disks = body.get("disks")
    if not isinstance(disks, list):
        return
    seen: set[str] = set()
    for index, disk in enumerate(disks):
        if not isinstance(disk, dict):
            continue
        name = str(disk.get("name", "root"))
        suffix = 0
        while name in seen:
            name = f"disk{index}-{suffix}"
            suffix += 1
        if name != disk.get("name", "root"):
            disk["name"] = name
        seen.add(name)


def _sizes(body: dict[str, Any], cpu: object, *, create: bool) -> None:
    """Maximums at least the figures (a create's missing figure is its default); a topology as
    large as the maximum (or vCPU count)."""
    for figure, ceiling in (("vcpus", "max_vcpus"), ("memory_mib", "max_memory_mib")):
        default = VmSpec.model_fields[figure].default if create else None
        value, top = body.get(figure, default), body.get(ceiling)
        if _number(value) and _number(top) and value > top:
            body[ceiling] = value
    topology = cpu.get("topology") if isinstance(cpu, dict) else None
    if not isinstance(topology, dict):
        return
    wanted = body.get("max_vcpus")
    if not _number(wanted):
        wanted = body.get("vcpus", 1) if body is not cpu else None
    if not _number(wanted):
        # An edit's topology must fit the VM's maximum: the server answers 409 if it does not.
        return
    topology.update({"sockets": int(wanted), "cores": 1, "threads": 1})


def _number(value: object) -> bool:
    """A JSON number (an integer may come as 309.0)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _png_template(drawn: str) -> str:
    # A small opaque PNG that still varies with what the fuzzer drew.
    side = len(drawn) % 4 + 1
    colour = (len(drawn) * 37 % 256, 80, 160)
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


#: Where a fuzzed request may make Corral connect: nowhere but this machine's loopback and
#: libvirt's in-process test driver. A schema-valid ``qemu:///system`` would register the
#: machine's own libvirtd (its pools and domains are the user's); ``qemu+tcp://8.8.8.8/…`` or an
#: enrollment over SSH would send traffic off the machine, and so would a host power driver
#: (IPMI to a BMC address, a Wake-on-LAN packet to a broadcast address).
# Allowed, never reachable (503): TLS to a port of loopback nothing listens on.
CONFINED_URI = "qemu+tls://127.0.0.1:1/system"
CONFINED_ADDRESS = "127.0.0.1"
CLOSED_PORT = 1  # tcpmux: nothing listens there, ssh fails at once


#: Where fuzzed backup stores are made: a directory of their own, never a path the fuzzer
#: chose (the run is root's; a store is a directory Corral creates).
STORE_ROOT = Path(tempfile.mkdtemp(prefix="corral-contract-stores-"))


def _confine(case: Case) -> None:
    label = f"{case.operation.method.upper()} {case.operation.path}"
    body = case.body
    if not isinstance(body, dict):
        return
    if label == "POST /api/v1/backup-stores" and isinstance(body.get("path"), str):
        if body["path"].startswith("/"):
            body["path"] = str(STORE_ROOT / secrets.token_hex(6))
    elif label == "POST /api/v1/hosts" and isinstance(body.get("uri"), str):
        if re.fullmatch(LIBVIRT_URI_PATTERN, body["uri"]):
            body["uri"] = CONFINED_URI
    elif label in ("POST /api/v1/host-enrollments", "POST /api/v1/host-bundles"):
        if isinstance(body.get("address"), str) and re.fullmatch(
            HOST_ADDRESS_PATTERN, body["address"]
        ):
            body["address"] = CONFINED_ADDRESS
        ssh = body.get("ssh")
        if isinstance(ssh, dict):
            destination = ssh.get("destination")
            if isinstance(destination, str) and "@" in destination:
                ssh["destination"] = destination.split("@", 1)[0] + "@" + CONFINED_ADDRESS
            if isinstance(ssh.get("port"), int):
                ssh["port"] = CLOSED_PORT
    elif label == "PUT /api/v1/hosts/{name}/power":
        _confine_power_driver(body.get("driver"))


def _confine_power_driver(driver: Any) -> None:
    """A BMC or a Wake-on-LAN target on this machine's loopback, at a port nothing uses."""
    if not isinstance(driver, dict):
        return
    if isinstance(driver.get("address"), str) and re.fullmatch(
        HOST_ADDRESS_PATTERN, driver["address"]
    ):
        driver["address"] = CONFINED_ADDRESS
    if isinstance(driver.get("broadcast"), str) and re.fullmatch(IPV4_PATTERN, driver["broadcast"]):
        driver["broadcast"] = CONFINED_ADDRESS
    if isinstance(driver.get("port"), int) and 1 <= driver["port"] <= 65535:
        driver["port"] = CLOSED_PORT
    wake = driver.get("wake")
    if isinstance(wake, dict):
        if isinstance(wake.get("broadcast"), str) and re.fullmatch(IPV4_PATTERN, wake["broadcast"]):
            wake["broadcast"] = CONFINED_ADDRESS
        if isinstance(wake.get("port"), int) and 1 <= wake["port"] <= 65535:
            wake["port"] = CLOSED_PORT


def _no_made_up_host(case: Case) -> None:
    """The negative phase makes up headers, once a ``host`` one (``Xhx@``): the DNS-rebinding
    check answers 400 for a name that is not Corral's before any route is reached, a status no
    operation lists (tests/unit/api/test_edge.py covers it). The Host header is the
    transport's, not the operation's: made-up ones go."""
    if case.headers:
        for name in [n for n in case.headers if n.lower() == "host"]:
            del case.headers[name]


def apply(case: Case) -> Case:
    """``map_case`` hook body: keep every case on this machine, and make positive cases satisfy
    the unstated rules."""
    _confine(case)
    _no_made_up_host(case)
    if not _positive(case):
        return case
    label = f"{case.operation.method.upper()} {case.operation.path}"
    if case.query and case.operation.method.upper() == "GET":
        case.query.pop("cursor", None)
    if label == "POST /api/v1/vms" and isinstance(case.body, dict):
        _unique_disk_names(case.body)
        _sizes(case.body, case.body.get("cpu"), create=True)
    elif label == "PATCH /api/v1/vms/{name}" and isinstance(case.body, dict):
        _sizes(case.body, case.body, create=False)
    elif label == "PUT /api/v1/images/{name}":
        case.body = _image_bytes(case.query or {})
    elif label == "GET /api/v1/migration/transports" and case.query:
        if ("source" in case.query) != ("destination" in case.query):
            case.query.pop("source", None)
            case.query.pop("destination", None)
        elif "source" in case.query and case.query["source"] == case.query["destination"]:
            case.query["destination"] = f"{case.query['source']}-2"
    elif label == "POST /api/v1/templates/{name}/vms" and isinstance(case.body, dict):
        # SSH keys must parse, user names and NIC numbers be unique, gateways sit inside
        # their networks: rules no schema states. A plain valid one stands in.
        if "cloud_init" in case.body:
            case.body["cloud_init"] = {"hostname": "fuzzed", "user_data": "#cloud-config\n{}"}
    elif label == "POST /api/v1/backup-stores" and isinstance(case.body, dict):
        # A key is one made by `corral backup key new`, not any string.
        if "key" in case.body:
            case.body["key"] = new_key_text().strip()
    elif label == "PUT /api/v1/vms/{name}/cloud-init":
        case.body = {"hostname": "fuzzed", "user_data": "#cloud-config\n{}"}
    elif label == "GET /api/v1/vms/{name}/log" and case.query:
        if "tail_bytes" in case.query and "tail_lines" in case.query:
            case.query.pop("tail_bytes")
    elif label == "POST /api/v1/vms/{name}/console/wait-screen":
        if not isinstance(case.body, dict):
            case.body = {"image_png_base64": ""}
        drawn = case.body.get("image_png_base64")
        if isinstance(drawn, str):
            case.body["image_png_base64"] = _png_template(drawn)
    return case


def _image_bytes(query: dict[str, Any]) -> bytes:
    """The body of an image upload, of the kind asked: which bytes make an image is not a
    schema's to say (an ISO 9660 volume descriptor at 32769, else raw disk bytes)."""
    if query.get("kind") == "iso":
        return bytes(32769) + b"CD001" + bytes(2043)
    return bytes(4096)
