"""What a VM gets when a request leaves something out, through the API on the test driver."""

from __future__ import annotations

from typing import Any

import libvirt
from lxml import etree

from tests.unit.api.conftest import Api


def _create(api: Api, name: str, **extra: Any) -> Any:
    spec = {"name": name, "memory_mib": 64, "disks": [{"size_gib": 1}], **extra}
    return api.client.post("/api/v1/vms", json=spec, headers=api.headers())


def _interfaces(name: str) -> list[tuple[str, str | None]]:
    """(type, network) of each interface in the domain's definition, read from libvirt."""
    conn = libvirt.open("test:///default")
    try:
        doc = etree.fromstring(conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    finally:
        conn.close()
    found = []
    for nic in doc.iterfind("devices/interface"):
        source = nic.find("source")
        found.append((str(nic.get("type")), None if source is None else source.get("network")))
    return found


def test_a_vm_without_nics_gets_one_on_nat(api: Api) -> None:
    answer = _create(api, "nic-default")
    assert answer.status_code == 201, answer.text
    assert [(n["network"], n["model"]) for n in answer.json()["nics"]] == [("corral-nat", "virtio")]
    assert _interfaces("nic-default") == [("network", "corral-nat")]


def test_an_empty_nic_list_means_no_network_card(api: Api) -> None:
    answer = _create(api, "nic-none", nics=[])
    assert answer.status_code == 201, answer.text
    assert answer.json()["nics"] == []
    assert _interfaces("nic-none") == []


def test_the_document_says_what_a_left_out_nic_list_means(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()["components"]["schemas"]["VmSpec"]
    assert "`[]`: no network card" in schema["properties"]["nics"]["description"]


def test_an_empty_cdrom_drive_is_enough_to_boot_from(api: Api) -> None:
    spec = {"name": "drive-only", "cdrom_drive": True, "boot": {"source": "cdrom"}}
    answer = api.client.post("/api/v1/vms", json=spec, headers=api.headers())
    assert answer.status_code == 201, answer.text
    assert [d["device"] for d in answer.json()["disks"]] == ["cdrom"]
    started = api.client.post("/api/v1/vms/drive-only/start", headers=api.headers())
    assert started.status_code == 200, started.text


def test_nothing_to_boot_from_says_what_to_add(api: Api) -> None:
    for spec, words in [
        ({"name": "bootless"}, "add one to disks, or boot from 'cdrom'"),
        ({"name": "bootless", "boot": {"source": "cdrom"}}, "cdrom_drive true"),
    ]:
        answer = api.client.post("/api/v1/vms", json=spec, headers=api.headers())
        assert answer.status_code == 422, answer.text
        assert words in answer.json()["detail"], answer.json()["detail"]


def test_the_document_gives_every_size_its_unit(api: Api) -> None:
    """The API takes sizes as numbers in the unit of the field's name (what a bare number
    means on the command line and in the forms too), and its document says so."""
    schemas = api.client.get("/openapi.json").json()["components"]["schemas"]
    for model, field, unit in [
        ("VmSpec", "memory_mib", "memory in MiB (2**20 bytes)"),
        ("VmEdit", "memory_mib", "memory in MiB (2**20 bytes)"),
        ("DiskSpec", "size_gib", "size in GiB (2**30 bytes)"),
        ("DiskAttachRequest", "size_gib", "size in GiB (2**30 bytes)"),
    ]:
        assert unit in schemas[model]["properties"][field]["description"], (model, field)
