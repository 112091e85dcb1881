"""``corral network …`` and ``corral host nics|label-nic|unlabel-nic`` against the real app on
libvirt's test driver."""

from __future__ import annotations

import libvirt

from tests.unit.cli.conftest import Run


def _libvirt_networks() -> set[str]:
    conn = libvirt.open("test:///default")
    try:
        return {n.name() for n in conn.listAllNetworks(0)}
    finally:
        conn.close()


def test_create_list_show_check_delete(run_real: Run) -> None:
    made = run_real("network", "create", "cli-nat", "--kind", "nat", "--required")
    assert made.exit_code == 0, made.output
    assert made.stdout.strip() == "test: applied"
    assert "cli-nat" in _libvirt_networks()
    listing = run_real("network", "list")
    assert listing.exit_code == 0, listing.output
    row = next(line.split() for line in listing.stdout.splitlines() if line.startswith("cli-nat"))
    assert row == ["cli-nat", "nat", "-", "yes", "test", "applied"]
    shown = run_real("network", "show", "cli-nat")
    assert shown.exit_code == 0 and "crlb-" in shown.stdout and "applied" in shown.stdout
    checked = run_real("network", "check")
    assert checked.exit_code == 0, checked.output
    optional = run_real("network", "edit", "cli-nat", "--optional")
    assert optional.exit_code == 0, optional.output
    assert "no" in run_real("network", "list").stdout.split("cli-nat", 1)[1].split()[2]
    deleted = run_real("network", "delete", "cli-nat", "--yes")
    assert deleted.exit_code == 0, deleted.output
    assert deleted.stdout.strip() == "deleted network cli-nat"
    assert "cli-nat" not in _libvirt_networks()
    unknown = run_real("network", "show", "cli-nat")
    assert unknown.exit_code == 1 and "corral network list" in unknown.stderr


def test_refusals_name_the_reason(run_real: Run) -> None:
    unlabelled = run_real("network", "create", "cli-br", "--kind", "bridge", "--uplink", "nope")
    assert unlabelled.exit_code == 1
    assert "no host has a NIC labelled 'nope'" in unlabelled.stderr
    no_vni = run_real("network", "create", "cli-vx", "--kind", "vxlan")
    assert no_vni.exit_code == 1 and "vni" in no_vni.stderr


def test_nic_labels(run_real: Run) -> None:
    labelled = run_real("host", "label-nic", "test", "eth1", "cli-lan")
    assert labelled.exit_code == 0, labelled.output
    nics = run_real("host", "nics", "test")
    assert nics.exit_code == 0, nics.output
    assert nics.stdout.splitlines()[1].split() == ["eth1", "aa:bb:cc:dd:ee:ff", "yes", "cli-lan"]
    wrong = run_real("host", "label-nic", "test", "eth7", "cli-lan")
    assert wrong.exit_code == 1 and "no NIC 'eth7'" in wrong.stderr
    gone = run_real("host", "unlabel-nic", "test", "eth1", "cli-lan")
    assert gone.exit_code == 0, gone.output
    assert run_real("host", "unlabel-nic", "test", "eth1", "cli-lan").exit_code == 1
