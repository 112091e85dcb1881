"""``corral vm …``: what is sent, printed and returned.

Against the real app on the test driver, except what it cannot do here (canned, its answers
checked against /openapi.json): a second host, base images and NAT networks, kernel files,
imports and their task progress, a guest that does not shut down, clones, serial logs."""

from __future__ import annotations

import json
from pathlib import Path

from corral.cli.formats import human_mib
from corral.model.vm import VmState
from tests.unit.cli.canned_api import vm_info
from tests.unit.cli.conftest import CannedApi, RealApi, Run, Vms


def _body(api: CannedApi, method: str, path: str) -> dict[str, object]:
    (request,) = api.requests_to(method, path)
    return json.loads(str(request[2]))  # type: ignore[no-any-return]


def test_list_shows_a_table(run: Run, api: CannedApi) -> None:
    api.state.vms = {"web1": vm_info("web1"), "db1": vm_info("db1", VmState.SHUTOFF, "h2")}
    result = run("vm", "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "HOST", "STATE", "VCPUS", "MEMORY", "UPTIME", "CPU", "TIME"]
    web = next(line for line in lines if line.startswith("web1"))
    assert web.split() == ["web1", "local", "running", "2", "2", "GiB", "3h", "25m", "1m", "15s"]
    db = next(line for line in lines if line.startswith("db1"))
    assert db.split()[:3] == ["db1", "h2", "shutoff"]
    assert db.split()[6] == "-"  # no uptime when shut off


def test_list_host_filter_is_sent(run: Run, api: CannedApi) -> None:
    api.state.vms = {"web1": vm_info("web1"), "db1": vm_info("db1", host="h2")}
    result = run("vm", "list", "--host", "h2")
    assert "db1" in result.stdout and "web1" not in result.stdout
    assert api.requests_to("GET", "/vms")[-1][3] == {"host": "h2", "sort": "name"}


def test_create_sends_the_spec(run: Run, api: CannedApi) -> None:
    result = run(
        "vm", "create", "web2", "--vcpus", "2", "--memory", "2G",
        "--disk", "size=10G", "--disk", "base=debian12,name=data,bus=sata",
        "--nic", "network=nat", "--nic", "user", "--description", "a <test> & more",
        "--accelerator", "tcg", "--host", "local",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = _body(api, "POST", "/vms")
    assert body == {
        "name": "web2",
        "vcpus": 2,
        "memory_mib": 2048,
        "disks": [
            {"name": "root", "size_gib": 10.0, "bus": "virtio", "domain": "local"},
            {"name": "data", "base_image": "debian12", "bus": "sata", "domain": "local"},
        ],
        "nics": [{"network": "nat", "model": "virtio"}, {"network": "user", "model": "virtio"}],
        "boot": {"source": "disk"},
        "description": "a <test> & more",
        "accelerator": "tcg",
        "host": "local",
        "start": False,
    }
    assert "created VM web2 on local" in result.stdout


def test_create_sends_an_existing_volume(run: Run, api: CannedApi) -> None:
    result = run("vm", "create", "san1", "--disk", "volume=lun-1,domain=iscsi1", "--no-nic")
    assert result.exit_code == 0, result.output
    assert _body(api, "POST", "/vms")["disks"] == [
        {"name": "root", "volume": "lun-1", "bus": "virtio", "domain": "iscsi1"}
    ]


def test_create_kernel_boot_is_inferred(run: Run, api: CannedApi) -> None:
    result = run(
        "vm", "create", "k1", "--memory", "256", "--kernel", "/boot/vmlinuz",
        "--initrd", "/boot/initrd.gz", "--cmdline", "console=ttyS0",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = _body(api, "POST", "/vms")
    assert body["boot"] == {
        "source": "kernel",
        "kernel": "/boot/vmlinuz",
        "initrd": "/boot/initrd.gz",
        "cmdline": "console=ttyS0",
    }
    assert body["memory_mib"] == 256


def test_create_with_import_waits_for_the_task(run: Run, api: CannedApi) -> None:
    gib = 2**30
    api.state.task_plans["vm.import"] = [
        {"state": "running", "phase": "copying image", "progress": 0.25,
         "bytes_done": gib // 4, "bytes_total": gib},
        {"state": "running", "phase": "copying image", "progress": 0.75,
         "bytes_done": 3 * gib // 4, "bytes_total": gib},
        {"state": "succeeded", "phase": "done", "progress": 1,
         "bytes_done": gib, "bytes_total": gib},
    ]  # fmt: skip
    result = run("vm", "create", "imp", "--disk", "import=/srv/a.qcow2")
    assert result.exit_code == 0, result.output
    assert len(api.requests_to("GET", "/tasks/task-1")) == 3
    assert "vm.import imp" in result.stderr
    assert "100%" in result.stderr
    assert "1.0/1.0 GiB" in result.stderr
    assert "created VM imp" in result.stdout


def test_create_with_import_no_wait_prints_the_task_id(run: Run, api: CannedApi) -> None:
    result = run("vm", "create", "imp", "--disk", "import=/srv/a.qcow2", "--no-wait")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "task-1"
    assert not api.requests_to("GET", "/tasks/task-1")


def test_create_failed_import_exits_1_with_the_task_error(run: Run, api: CannedApi) -> None:
    api.state.task_plans["vm.import"] = [
        {"state": "running", "progress": 0.1},
        {"state": "failed", "error": "/srv/a.qcow2 is not a disk image: pick a qcow2 or raw file"},
    ]
    result = run("vm", "create", "imp", "--disk", "import=/srv/a.qcow2")
    assert result.exit_code == 1
    assert "error: /srv/a.qcow2 is not a disk image: pick a qcow2 or raw file" in result.stderr


def test_shutdown_sends_timeout_and_force(run: Run, api: CannedApi) -> None:
    api.state.vms = {"web1": vm_info("web1")}
    result = run("vm", "shutdown", "web1", "--timeout", "5", "--force")
    assert result.exit_code == 0, result.output
    assert _body(api, "POST", "/vms/web1/shutdown") == {"timeout_s": 5.0, "force": True}
    assert "shut down VM web1" in result.stdout


def test_shutdown_timeout_without_force_fails(run: Run, api: CannedApi) -> None:
    api.state.vms = {"web1": vm_info("web1")}
    message = "VM web1 did not shut down within 60 s: retry with --force or use `vm stop`"
    api.state.task_plans["vm.shutdown"] = [
        {"state": "running", "phase": "waiting for the guest"},
        {"state": "failed", "error": message},
    ]
    result = run("vm", "shutdown", "web1")
    assert result.exit_code == 1
    assert f"error: {message}" in result.stderr
    assert _body(api, "POST", "/vms/web1/shutdown") == {"timeout_s": 60.0, "force": False}


def test_clone(run: Run, api: CannedApi) -> None:
    api.state.vms = {"base": vm_info("base", VmState.SHUTOFF)}
    result = run("vm", "clone", "base", "copy1", "--description", "from base")
    assert result.exit_code == 0, result.output
    assert _body(api, "POST", "/vms/base/clone") == {"name": "copy1", "description": "from base"}
    assert "cloned VM base as copy1" in result.stdout
    no_wait = run("vm", "clone", "base", "copy2", "--no-wait")
    assert no_wait.stdout.strip() == "task-2"
    bad = run("vm", "clone", "base", "bad/name")
    assert bad.exit_code == 2


def test_log_and_tail(run: Run, api: CannedApi) -> None:
    api.state.vms = {"web1": vm_info("web1")}
    api.state.logs["web1"] = bytearray(b"boot\nline2\nheartbeat 1\n")
    assert run("vm", "log", "web1").stdout == "boot\nline2\nheartbeat 1\n"
    tail = run("vm", "log", "web1", "--tail", "2")  # lines, as tail -n and docker logs count
    assert tail.stdout == "line2\nheartbeat 1\n"
    assert api.requests_to("GET", "/vms/web1/log")[-1][3] == {"tail_lines": "2"}


def test_list_json_is_the_api_json(run_real: Run, vms: Vms) -> None:
    vms.make("cli-listed")
    result = run_real("vm", "list", "--json")
    assert result.exit_code == 0, result.output
    page = json.loads(result.stdout)
    assert set(page) == {"items", "next_cursor"}
    (mine,) = [vm for vm in page["items"] if vm["name"] == "cli-listed"]
    assert mine == vms.get("cli-listed")
    global_flag = run_real("--json", "vm", "list")
    assert mine in json.loads(global_flag.stdout)["items"]


def test_list_pages_and_all_follows_the_cursors(run_real: Run, real_api: RealApi, vms: Vms) -> None:
    names = [vms.make(f"cli-pg{i}") for i in range(5)]
    first = run_real("vm", "list", "--name-prefix", "cli-pg", "--limit", "2")
    assert first.exit_code == 0, first.output
    assert [line.split()[0] for line in first.stdout.splitlines()[1:]] == names[:2]
    assert "--all" in first.stderr and "--cursor" in first.stderr
    cursor = first.stderr.split("--cursor ")[1].split()[0]
    second = run_real(
        "vm", "list", "--name-prefix", "cli-pg", "--limit", "2", "--cursor", cursor, "--json"
    )  # fmt: skip
    assert [v["name"] for v in json.loads(second.stdout)["items"]] == names[2:4]
    every = run_real(
        "vm", "list", "--name-prefix", "cli-pg", "--limit", "2", "--all", "--sort", "-name",
        "--json",
    )  # fmt: skip
    assert every.exit_code == 0, every.output
    assert json.loads(every.stdout) == {
        "items": [vms.get(n) for n in reversed(names)],
        "next_cursor": None,
    }
    assert "4 VMs so far" in every.stderr
    assert len(real_api.requests_to("GET", "/vms")) == 2 + 3
    vms.client.post("/vms/cli-pg3/start")
    running = run_real("vm", "list", "--name-prefix", "cli-pg", "--state", "running")
    assert [line.split()[:3] for line in running.stdout.splitlines()[1:]] == [
        ["cli-pg3", "test", "running"]
    ]


def test_list_refuses_a_cursor_of_another_query(run_real: Run, vms: Vms) -> None:
    vms.make("cli-pgx1")
    vms.make("cli-pgx2")
    first = run_real("vm", "list", "--name-prefix", "cli-pgx", "--limit", "1", "--json")
    cursor = json.loads(first.stdout)["next_cursor"]
    other = run_real("vm", "list", "--name-prefix", "cli-pg", "--cursor", cursor)
    assert other.exit_code == 1
    assert "another query" in other.stderr
    bad = run_real("vm", "list", "--limit", "5000")
    assert bad.exit_code == 2 and "--limit" in bad.stderr


def test_show_prints_details_and_disks(run_real: Run, vms: Vms) -> None:
    vms.make("cli-shown")
    result = run_real("vm", "show", "cli-shown")
    assert result.exit_code == 0, result.output
    assert "shutoff" in result.stdout
    (disk,) = vms.get("cli-shown")["disks"]
    (row,) = [line for line in result.stdout.splitlines() if disk["path"] in line]
    assert row.split()[:4] == ["root", "vda", "virtio", "disk"]


def test_show_missing_vm_prints_the_api_detail(run_real: Run, real_api: RealApi) -> None:
    result = run_real("vm", "show", "nope")
    assert result.exit_code == 1
    with real_api.client() as client:
        detail = client.get("/vms/nope").json()["detail"]
    assert result.stderr.strip() == f"error: {detail}"
    assert "nope" in detail
    assert result.stdout == ""


def test_create_with_start_starts_it(run_real: Run, real_api: RealApi, vms: Vms) -> None:
    vms.names.append("cli-started")  # made by the CLI, deleted by the fixture
    result = run_real("vm", "create", "cli-started", "--disk", "size=1G", "--start")
    assert result.exit_code == 0, result.output
    # The server starts it (inside the creation task when an image is imported).
    (request,) = real_api.requests_to("POST", "/vms")
    assert json.loads(str(request[2]))["start"] is True
    assert not real_api.requests_to("POST", "/vms/cli-started/start")
    assert vms.get("cli-started")["state"] == VmState.RUNNING
    assert "and started it" in result.stdout


def test_create_gives_one_nat_nic_unless_told_otherwise(
    run_real: Run, real_api: RealApi, vms: Vms
) -> None:
    vms.names += ["cli-netted", "cli-unnetted"]  # made by the CLI, deleted by the fixture
    netted = run_real("vm", "create", "cli-netted", "--disk", "size=1G")
    assert netted.exit_code == 0, netted.output
    # The server's default, not the client's: the body leaves the NICs out.
    assert "nics" not in json.loads(str(real_api.requests_to("POST", "/vms")[-1][2]))
    assert [(n["network"], n["model"]) for n in vms.get("cli-netted")["nics"]] == [
        ("corral-nat", "virtio")
    ]
    bare = run_real("vm", "create", "cli-unnetted", "--disk", "size=1G", "--no-nic")
    assert bare.exit_code == 0, bare.output
    assert json.loads(str(real_api.requests_to("POST", "/vms")[-1][2]))["nics"] == []
    assert vms.get("cli-unnetted")["nics"] == []
    both = run_real("vm", "create", "cli-both", "--disk", "size=1G", "--nic", "user", "--no-nic")
    assert both.exit_code == 2 and "--nic or --no-nic" in both.stderr


def test_create_with_only_an_empty_cdrom_drive(run_real: Run, real_api: RealApi, vms: Vms) -> None:
    vms.names.append("cli-drive")  # made by the CLI, deleted by the fixture
    result = run_real("vm", "create", "cli-drive", "--cdrom-drive", "--start")
    assert result.exit_code == 0, result.output
    body = json.loads(str(real_api.requests_to("POST", "/vms")[-1][2]))
    assert body["boot"] == {"source": "cdrom"} and body["cdrom_drive"] is True
    vm = vms.get("cli-drive")
    assert [(d["device"], d["path"]) for d in vm["disks"]] == [("cdrom", "")]
    assert vm["state"] == VmState.RUNNING


def test_create_usage_errors_exit_2_without_calling_the_api(
    run_real: Run, real_api: RealApi
) -> None:
    cases = [
        (["--memory", "lots"], "invalid size 'lots'"),
        (["--disk", "size=1G,colour=red"], "unknown key 'colour'"),
        (["--nic", "network=nat,model=ne2k"], "model"),
        (["--boot", "floppy"], "floppy"),
        (["--boot", "cdrom", "--disk", "size=1G"], "cdrom"),
        ([], "a VM needs something to boot from: --disk size=10G"),
        (["--disk", "import=rel.qcow2"], "absolute path"),
    ]
    for extra, message in cases:
        result = run_real("vm", "create", "bad", *extra)
        assert result.exit_code == 2, (extra, result.output)
        assert message in result.stderr, (extra, result.stderr)
    bad_name = run_real("vm", "create", "bad name", "--disk", "size=1G")
    assert bad_name.exit_code == 2
    assert "name: must be 1-63 characters from A-Z a-z 0-9 . _ -" in bad_name.stderr
    assert not real_api.requests_to("POST", "/vms")


def test_create_conflict_is_reported(run_real: Run, vms: Vms) -> None:
    vms.make("cli-twice")
    result = run_real("vm", "create", "cli-twice", "--disk", "size=1G")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "cli-twice" in result.stderr
    assert "exists" in result.stderr


def test_create_larger_than_every_host_says_what_the_hosts_have(
    run_real: Run, real_api: RealApi
) -> None:
    """Placement's refusal in the user's words: the size as typed (no QEMU share added), the
    largest host and the most free memory, and no overcommit advice (no setting can help)."""
    with real_api.client() as client:
        [host] = client.get("/hosts").json()["items"]
    result = run_real("vm", "create", "cli-huge", "--memory", "1.5T", "--disk", "size=1G")
    assert result.exit_code == 1, result.output
    total = human_mib(host["capabilities"]["memory_mib"])
    assert result.stderr.startswith(
        "error: no host can take VM cli-huge: it asks for memory 1.5 TiB, more than any host "
        f"has (the largest, {host['name']}, has {total}); the most free on any host is "
    ), result.stderr
    assert result.stderr.rstrip().endswith(f"on {host['name']}: ask for less memory")
    for wrong in ("overcommit", "--host", '"host"', "1572928", "memory_mib"):
        assert wrong not in result.stderr, result.stderr
    with real_api.client() as client:
        assert client.get("/vms/cli-huge").status_code == 404


def test_power_actions(run_real: Run, vms: Vms) -> None:
    vms.make("cli-power")
    for action, state in [("start", "running"), ("pause", "paused"), ("resume", "running"),
                          ("reboot", "running"), ("stop", "shutoff")]:  # fmt: skip
        result = run_real("vm", action, "cli-power")
        assert result.exit_code == 0, result.output
        assert f"VM cli-power ({state})" in result.stdout
        assert vms.get("cli-power")["state"] == state
    as_json = run_real("vm", "start", "cli-power", "--json")
    assert json.loads(as_json.stdout)["state"] == "running"
    assert vms.get("cli-power")["state"] == "running"


def test_delete_asks_unless_yes(run_real: Run, real_api: RealApi, vms: Vms) -> None:
    vms.make("cli-old")
    refused = run_real("vm", "delete", "cli-old", input="n\n")
    assert refused.exit_code == 1
    assert "Delete VM cli-old (disks are kept)?" in refused.stderr
    assert vms.get("cli-old")["name"] == "cli-old"
    confirmed = run_real("vm", "delete", "cli-old", "--delete-disks", input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert real_api.requests_to("DELETE", "/vms/cli-old")[-1][3] == {"delete_disks": "true"}
    assert vms.client.get("/vms/cli-old").status_code == 404


def test_delete_without_delete_disks_names_the_disks_it_keeps(run_real: Run, vms: Vms) -> None:
    vms.make("cli-keep", disks=[{"size_gib": 1}, {"name": "data", "size_gib": 1}])
    root, data = (d["path"].rsplit("/", 1)[-1] for d in vms.get("cli-keep")["disks"])
    result = run_real("vm", "delete", "cli-keep", "--yes")
    assert result.exit_code == 0, result.output
    said = " ".join(result.stdout.split())
    assert f"disks kept on host test: {root}, {data} (delete them with `corral volume delete" in (
        said
    )
    assert "or reuse one: `corral vm disk attach VM DISK --volume VOLUME`" in said
    # What it says works: one kept disk is deleted, the other becomes another VM's (deleted
    # with it after the test).
    deleted = run_real("volume", "delete", "test", root, "--yes")
    assert deleted.exit_code == 0, deleted.output
    vms.make("cli-heir")
    attach = run_real("vm", "disk", "attach", "cli-heir", "inherited", "--volume", data)
    assert attach.exit_code == 0, attach.output
    assert data in {d["path"].rsplit("/", 1)[-1] for d in vms.get("cli-heir")["disks"]}


def test_delete_running_vm_conflict(run_real: Run, real_api: RealApi, vms: Vms) -> None:
    vms.make("cli-busy", start=True)
    result = run_real("vm", "delete", "cli-busy", "--yes")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "running" in result.stderr
    assert real_api.requests_to("DELETE", "/vms/cli-busy")[-1][3] == {}
    assert vms.get("cli-busy")["state"] == "running"


def test_screenshot_writes_png(run_real: Run, vms: Vms, tmp_path: Path) -> None:
    vms.make("cli-screen", start=True)
    target = tmp_path / "shot.png"
    result = run_real("vm", "screenshot", "cli-screen", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == vms.client.get("/vms/cli-screen/screenshot").content
    assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_snapshots(run_real: Run, real_api: RealApi, vms: Vms) -> None:
    vms.make("cli-snap", start=True)
    created = run_real(
        "vm", "snapshot", "create", "cli-snap", "before-upgrade", "--description", "x"
    )
    assert created.exit_code == 0, created.output
    (request,) = real_api.requests_to("POST", "/vms/cli-snap/snapshots")
    assert json.loads(str(request[2])) == {"name": "before-upgrade", "description": "x"}
    listed = run_real("vm", "snapshot", "list", "cli-snap")
    assert "before-upgrade" in listed.stdout and "*" in listed.stdout
    assert run_real("vm", "snapshot", "revert", "cli-snap", "before-upgrade").exit_code == 0
    missing = run_real("vm", "snapshot", "revert", "cli-snap", "nope")
    assert missing.exit_code == 1 and "nope" in missing.stderr
    assert missing.stderr.startswith("error: ")
    assert run_real("vm", "snapshot", "delete", "cli-snap", "before-upgrade").exit_code == 0
    listed_json = json.loads(run_real("vm", "snapshot", "list", "cli-snap", "--json").stdout)
    assert listed_json == {"items": [], "next_cursor": None}


def test_server_text_is_printed_literally_not_as_markup(run_real: Run, vms: Vms) -> None:
    odd = "[/] closes nothing [red]not red[/red]"
    vms.make("cli-odd", description=odd)
    result = run_real("vm", "show", "cli-odd")
    assert result.exit_code == 0, result.output
    assert odd in result.stdout


def test_a_mistyped_vm_or_host_gets_did_you_mean(run_real: Run, vms: Vms) -> None:
    vms.make("cli-mistyped")
    shown = run_real("vm", "show", "cli-misstyped")
    assert shown.exit_code == 1
    assert shown.stderr.startswith(
        "error: no VM named 'cli-misstyped'; did you mean 'cli-mistyped'?"
    )
    started = run_real("vm", "start", "cli-mistypd")
    assert started.exit_code == 1 and "did you mean 'cli-mistyped'?" in started.stderr
    host = run_real("host", "show", "tets")
    assert host.exit_code == 1 and "did you mean 'test'?" in host.stderr


def test_a_disk_names_its_storage_domain(run: Run, api: CannedApi) -> None:
    result = run("vm", "create", "web3", "--disk", "size=2G,domain=shared1", "--host", "local")
    assert result.exit_code == 0, result.output
    [disk] = _body(api, "POST", "/vms")["disks"]
    assert disk == {"name": "root", "size_gib": 2.0, "bus": "virtio", "domain": "shared1"}
