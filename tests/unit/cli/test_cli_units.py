"""Size, disk and NIC parsing, and the human formats of tables."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from corral.cli.formats import human_bytes, human_duration
from corral.cli.main import app
from corral.cli.units import (
    GIB,
    MIB,
    parse_disk_spec,
    parse_disk_specs,
    parse_memory_mib,
    parse_nic_spec,
    parse_size,
)
from corral.model.vm import DiskBus


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512M", 512 * MIB),
        ("2G", 2 * GIB),
        ("1.5GiB", 3 * GIB // 2),
        ("1.5 GiB", 3 * GIB // 2),
        ("2gb", 2 * GIB),
        ("1024k", MIB),
        ("1T", 1024 * GIB),
        ("4096B", 4096),
        ("10", 10 * MIB),
        (".5G", GIB // 2),
    ],
)
def test_parse_size_accepts_units(text: str, expected: int) -> None:
    assert parse_size(text, MIB) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "invalid size ''"),
        ("twelve", "use a number with an optional unit"),
        ("-1G", "invalid size '-1G'"),
        ("1X", "unknown unit 'X'"),
        ("0", "greater than zero"),
        ("0G", "greater than zero"),
        ("1.2.3G", "invalid size"),
        ("G", "invalid size"),
    ],
)
def test_parse_size_rejects_bad_input_with_a_hint(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_size(text, MIB)


def test_memory_bare_number_is_mib_and_must_be_whole() -> None:
    assert parse_memory_mib("512") == 512
    assert parse_memory_mib("2G") == 2048
    assert parse_memory_mib("1.5G") == 1536
    with pytest.raises(ValueError, match="whole number of MiB"):
        parse_memory_mib("1.5M")
    with pytest.raises(ValueError, match="whole number of MiB"):
        parse_memory_mib("100K")


@pytest.mark.parametrize("unit", ["G", "GB", "GiB", "g", "gb", "gib", " GiB"])
def test_every_spelling_of_a_unit_is_binary_for_memory_and_disks(unit: str) -> None:
    assert parse_memory_mib(f"2{unit}") == 2048
    assert parse_disk_spec(f"size=2{unit}").size_gib == 2.0
    assert parse_memory_mib(f"512{unit.replace('G', 'M').replace('g', 'm')}") == 512


def test_the_size_rule_is_in_the_help_and_the_errors() -> None:
    """Bare numbers differ by what they size (MiB of memory, GiB of disk): every size
    option's help says which, and that G, GB and GiB are one unit."""
    for path, option, rule in [
        (("vm", "create"), "--memory", "a bare number is MiB; G, GB and GiB all mean GiB"),
        (("vm", "create"), "--disk", "Sizes: a bare number is GiB; G, GB and GiB all mean GiB"),
        (("vm", "create"), "--max-memory", "(bare number: MiB)"),
        (("vm", "edit"), "--memory", "a bare number is MiB; G, GB and GiB all mean GiB"),
        (("vm", "edit"), "--max-memory", "(bare number: MiB)"),
        (("vm", "disk", "attach"), "--size", "a bare number is GiB; G, GB and GiB all mean GiB"),
    ]:
        result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
        flat = " ".join(result.stdout.split())
        assert option in flat and rule in flat, (path, option, result.stdout)
    with pytest.raises(ValueError, match="G, GB and GiB all mean GiB"):
        parse_memory_mib("2 gigs")


def test_disk_spec_size_name_bus() -> None:
    disk = parse_disk_spec("size=10G,name=data,bus=sata")
    assert (disk.name, disk.size_gib, disk.bus) == ("data", 10.0, DiskBus.SATA)
    assert parse_disk_spec("size=512M").size_gib == 0.5
    assert parse_disk_spec("size=20").size_gib == 20.0  # bare number: GiB


def test_disk_spec_base_and_import() -> None:
    assert parse_disk_spec("base=debian12").base_image == "debian12"
    disk = parse_disk_spec("import=/srv/images/a.qcow2,name=sys")
    assert (disk.import_path, disk.name) == ("/srv/images/a.qcow2", "sys")


def test_disk_spec_existing_volume() -> None:
    disk = parse_disk_spec("volume=lun-1,domain=iscsi1")
    assert (disk.volume, disk.domain, disk.size_gib) == ("lun-1", "iscsi1", None)
    with pytest.raises(ValueError, match="exactly one source"):
        parse_disk_spec("volume=lun-1,size=1G")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("size=10G,base=img", "exactly one source"),
        ("name=data", "exactly one source"),
        ("10G", "'10G' is not key=value"),
        ("size=10G,colour=red", "unknown key 'colour'"),
        ("size=10G,size=2G", "'size' given twice"),
        ("size=lots", "invalid size 'lots'"),
        ("import=relative.qcow2", "import_path: must be an absolute path"),
        ("size=1G,bus=floppy", "bus"),
        ("size=1G,name=../etc", "name"),
        ("size=,name=x", "is not key=value"),
    ],
)
def test_disk_spec_bad_input_says_what_to_do(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_disk_spec(text)
    assert text in str(info.value)


def test_unnamed_disks_get_distinct_names() -> None:
    disks = parse_disk_specs(["size=10G", "size=1G", "size=2G,name=root2", "base=img"])
    assert [d.name for d in disks] == ["root", "disk1", "root2", "disk2"]
    named_root_later = parse_disk_specs(["size=1G", "size=2G,name=root"])
    assert [d.name for d in named_root_later] == ["disk1", "root"]


def test_nic_spec() -> None:
    assert parse_nic_spec("nat").network == "nat"
    assert parse_nic_spec("network=user").network == "user"
    nic = parse_nic_spec("network=lan0,model=e1000,mac=52:54:00:AA:bb:01")
    assert (nic.network, nic.model, nic.mac) == ("lan0", "e1000", "52:54:00:aa:bb:01")
    with pytest.raises(ValueError, match="model"):
        parse_nic_spec("network=nat,model=ne2k")
    with pytest.raises(ValueError, match="unknown key 'vlan'"):
        parse_nic_spec("network=nat,vlan=3")
    with pytest.raises(ValueError, match="mac"):
        parse_nic_spec("network=nat,mac=zz")


def test_human_formats() -> None:
    assert human_bytes(0) == "0 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(2 * GIB) == "2 GiB"
    assert human_bytes(1024 * GIB - 512) == "1 TiB"
    assert human_bytes(1023 * GIB) == "1023 GiB"
    assert human_duration(None) == "-"
    assert human_duration(4.25) == "4.2s"
    assert human_duration(42) == "42s"
    assert human_duration(312) == "5m 12s"
    assert human_duration(3 * 3600 + 25 * 60 + 7) == "3h 25m"
    assert human_duration(86400 + 30) == "1d 0h"
