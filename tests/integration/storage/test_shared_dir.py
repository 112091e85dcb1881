"""``shared-dir`` storage domains on the test bed, through the CLI: the test-bed hosts and the
local host share this machine's filesystem, so a directory under the test's temporary
directory is one filesystem for all of them — until a test mounts something else over it
inside one host's mount namespace (a tmpfs, or another domain's directory)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.multihost import MultiHostTestbed, TestbedHost

pytestmark = pytest.mark.integration

MIB = 2**20


def _ok(result: subprocess.CompletedProcess[str]) -> Any:
    """The JSON a ``--json`` command printed."""
    _done(result)
    return json.loads(result.stdout)


def _done(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr


def _create(corral: CorralServer, name: str, path: Path) -> subprocess.CompletedProcess[str]:
    return corral.cli(
        "--json", "storage-domain", "create", name, "--kind", "shared-dir", "--path", str(path)
    )


def _flat(text: str) -> str:
    return " ".join(text.split())


def _reach(domain: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["host"]: h for h in domain["hosts"]}


def _pools(host: TestbedHost) -> list[str]:
    conn = libvirt.open(host.unix_uri)
    try:
        return [p.name() for p in conn.listAllStoragePools()]
    finally:
        conn.close()


def _in_host(host: TestbedHost, *argv: str) -> None:
    subprocess.run(host.inside(list(argv)), check=True, capture_output=True)


@pytest.fixture
def delete_later(multihost_corral: CorralServer) -> Iterator[list[str]]:
    """Domains a test made, deleted afterwards whatever happened."""
    names: list[str] = []
    yield names
    for name in names:
        multihost_corral.cli("storage-domain", "delete", name, "--yes")


def test_a_directory_every_host_sees_is_reached_by_all_and_holds_volumes(
    multihost_corral: CorralServer,
    testbed: MultiHostTestbed,
    tmp_path: Path,
    delete_later: list[str],
) -> None:
    corral = multihost_corral
    domain = _ok(_create(corral, "sd-all", tmp_path))
    delete_later.append("sd-all")
    reach = _reach(domain)
    assert {h: r["state"] for h, r in reach.items()} == dict.fromkeys(
        ("local", "h1", "h2", "h3"), "reachable"
    )
    assert all(r["checked_at"] and r["free_bytes"] > 0 for r in reach.values())
    assert (tmp_path / "corral-domain-marker").read_bytes().isalnum()
    assert all("corral-sd-sd-all" in _pools(h) for h in testbed.hosts)
    ops = {o["operation"]: o for o in domain["operations"]}
    assert ops["create_volume"]["supported"] and ops["linked_clone"]["supported"]
    assert ops["upload"]["supported"]  # the image library keeps images there too

    made = _ok(
        corral.cli("--json", "volume", "create", "v1", "--domain", "sd-all", "--size", "64M")
    )
    assert made["domain"] == "sd-all" and made["capacity_bytes"] == 64 * MIB
    assert (tmp_path / "v1").is_file()
    listed = _ok(corral.cli("--json", "volume", "list", "--domain", "sd-all"))
    assert [v["name"] for v in listed["items"]] == ["v1"]  # the marker is no volume

    huge = corral.cli("volume", "create", "v2", "--domain", "sd-all", "--size", "65000G")
    assert huge.returncode != 0
    said = _flat(huge.stderr)
    assert re.search(r"storage domain sd-all has \d+ bytes \([\d.]+ GiB\) free", said), said
    assert f"volume v2 needs {65000 * 2**30} bytes" in said, said

    grown = _ok(corral.cli("--json", "volume", "resize", "v1", "--domain", "sd-all",
                           "--size", "128M"))  # fmt: skip
    assert grown["capacity_bytes"] == 128 * MIB
    _done(corral.cli("volume", "delete", "v1", "--domain", "sd-all", "--yes"))
    assert not (tmp_path / "v1").exists()

    _done(corral.cli("storage-domain", "delete", "sd-all", "--yes"))
    delete_later.clear()
    assert not any("corral-sd-sd-all" in _pools(h) for h in testbed.hosts)
    assert (tmp_path / "corral-domain-marker").exists()  # the files stay


def test_a_host_where_the_path_is_another_filesystem_is_unreachable_until_it_is_not(
    multihost_corral: CorralServer,
    testbed: MultiHostTestbed,
    tmp_path: Path,
    delete_later: list[str],
) -> None:
    corral, h3 = multihost_corral, testbed.host("h3")
    _in_host(h3, "mount", "-t", "tmpfs", "corral-test", str(tmp_path))
    try:
        domain = _ok(_create(corral, "sd-split", tmp_path))
        delete_later.append("sd-split")
        reach = _reach(domain)
        assert reach["h3"]["state"] == "unreachable"
        assert "not the filesystem the other hosts share" in reach["h3"]["reason"]
        assert all(reach[h]["state"] == "reachable" for h in ("local", "h1", "h2"))
        assert "corral-sd-sd-split" not in _pools(h3)
        again = _ok(corral.cli("--json", "storage-domain", "check", "sd-split"))
        assert _reach(again)["h3"]["state"] == "unreachable"
        shown = corral.cli("storage-domain", "show", "sd-split")
        assert "unreachable" in shown.stdout and "h3" in shown.stdout, shown.stdout
    finally:
        _in_host(h3, "umount", str(tmp_path))
    fixed = _ok(corral.cli("--json", "storage-domain", "check", "sd-split"))
    assert _reach(fixed)["h3"]["state"] == "reachable"
    assert "corral-sd-sd-split" in _pools(h3)


def test_a_host_seeing_another_domains_marker_is_unreachable(
    multihost_corral: CorralServer,
    testbed: MultiHostTestbed,
    tmp_path: Path,
    delete_later: list[str],
) -> None:
    corral, h2 = multihost_corral, testbed.host("h2")
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    _ok(_create(corral, "sd-first", first))
    delete_later.append("sd-first")
    _in_host(h2, "mount", "--bind", str(first), str(second))
    try:
        domain = _ok(_create(corral, "sd-second", second))
        delete_later.append("sd-second")
    finally:
        _in_host(h2, "umount", str(second))
    reach = _reach(domain)
    assert reach["h2"]["state"] == "unreachable"
    assert "holds another marker" in reach["h2"]["reason"]
    assert reach["h1"]["state"] == "reachable"


def test_a_directory_no_host_has_is_refused_leaving_nothing(
    multihost_corral: CorralServer, testbed: MultiHostTestbed, tmp_path: Path
) -> None:
    corral = multihost_corral
    refused = _create(corral, "sd-none", tmp_path / "absent")
    assert refused.returncode != 0
    said = _flat(refused.stderr)
    assert "no host reaches storage domain sd-none" in said, said
    for host in ("h1", "h2", "h3"):
        assert f"host {host}: cannot use {tmp_path / 'absent'}" in said
    assert not any("corral-sd-sd-none" in _pools(h) for h in testbed.hosts)
    listed = _ok(corral.cli("--json", "storage-domain", "list"))
    assert "sd-none" not in [d["name"] for d in listed["items"]]
    assert not (tmp_path / "absent").exists()


def test_a_host_that_reconnects_is_checked_again(
    multihost_corral: CorralServer,
    testbed: MultiHostTestbed,
    tmp_path: Path,
    delete_later: list[str],
) -> None:
    corral, h3 = multihost_corral, testbed.host("h3")
    _in_host(h3, "mount", "-t", "tmpfs", "corral-test", str(tmp_path))
    try:
        domain = _ok(_create(corral, "sd-later", tmp_path))
        delete_later.append("sd-later")
    finally:
        _in_host(h3, "umount", str(tmp_path))
    assert _reach(domain)["h3"]["state"] == "unreachable"
    testbed.kill_daemon(h3, "libvirtd")
    testbed.start_daemon(h3, "libvirtd", "--listen")

    def h3_reaches() -> bool | None:
        shown = _ok(corral.cli("--json", "storage-domain", "show", "sd-later"))
        return _reach(shown)["h3"]["state"] == "reachable" or None

    wait_until(h3_reaches, 60, "h3 to reach sd-later after reconnecting")


def _status(corral: CorralServer, host: str) -> str:
    hosts = _ok(corral.cli("--json", "host", "list"))
    return str(next(h["status"] for h in hosts["items"] if h["name"] == host))


def test_a_domain_deleted_while_a_host_is_down_leaves_no_pool_there(
    multihost_corral: CorralServer, testbed: MultiHostTestbed, tmp_path: Path
) -> None:
    corral, h3 = multihost_corral, testbed.host("h3")
    _ok(_create(corral, "sd-gone", tmp_path))
    assert "corral-sd-sd-gone" in _pools(h3)
    testbed.kill_daemon(h3, "libvirtd")
    wait_until(lambda: _status(corral, "h3") == "unreachable" or None, 30, "h3 unreachable")
    _done(corral.cli("storage-domain", "delete", "sd-gone", "--yes"))
    testbed.start_daemon(h3, "libvirtd", "--listen")
    wait_until(lambda: _status(corral, "h3") == "connected" or None, 60, "h3 back")
    wait_until(
        lambda: "corral-sd-sd-gone" not in _pools(h3) or None, 30, "h3 to forget sd-gone's pool"
    )
    assert (tmp_path / "corral-domain-marker").exists()  # its files stay
