"""hosts, users, tokens and the audit log.

Users, tokens and the audit log run against the real app; hosts against the canned API (the
real one cannot add a second host on this machine: a test:/// URI names the local host's own
simulated daemon, which Corral refuses as a twin)."""

from __future__ import annotations

import json

from tests.unit.cli.canned_api import vm_info
from tests.unit.cli.conftest import CannedApi, RealApi, Run


def test_hosts(run: Run, api: CannedApi) -> None:
    added = run("host", "add", "h2", "qemu+tls://h2/system", "--accelerator", "tcg")
    assert added.exit_code == 0, added.output
    assert "added host h2 (connected)" in added.stdout
    (request,) = api.requests_to("POST", "/hosts")
    assert json.loads(str(request[2])) == {
        "name": "h2", "uri": "qemu+tls://h2/system", "accelerator": "tcg"
    }  # fmt: skip
    listed = run("host", "list")
    row = next(line for line in listed.stdout.splitlines() if line.startswith("h2"))
    assert row.split()[:6] == ["h2", "connected", "qemu+tls://h2/system", "tcg", "2", "4"]
    shown = run("host", "show", "h2")
    assert "9.0.0" in shown.stdout and "x86_64" in shown.stdout
    api.state.vms = {"web1": vm_info("web1", host="h2")}
    refused = run("host", "remove", "h2")
    assert refused.exit_code == 1
    assert "error: host h2 still has VMs: migrate or delete them first" in refused.stderr
    api.state.vms = {}
    assert run("host", "remove", "h2").exit_code == 0
    assert run("host", "add", "bad name", "qemu:///system").exit_code == 2


def test_users(run_real: Run, real_api: RealApi) -> None:
    added = run_real("user", "add", "alice", "--role", "operator", "--password-stdin",
                     input="a long enough password 1\n")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "added user alice (operator)" in added.stdout
    (request,) = real_api.requests_to("POST", "/users")
    assert json.loads(str(request[2]))["password"] == "a long enough password 1"
    assert "a long enough password 1" not in added.output
    real_api.login("alice", "a long enough password 1")  # the password is the one sent
    listed = run_real("user", "list", "--json")
    assert {"name": "alice", "role": "operator"}.items() <= next(
        u for u in json.loads(listed.stdout)["items"] if u["name"] == "alice"
    ).items()
    short = run_real("user", "add", "bob", "--password-stdin", input="short\n")
    assert short.exit_code == 2 and "password" in short.stderr
    bad_role = run_real("user", "add", "bob", "--role", "god", "--password-stdin",
                        input="x" * 20)  # fmt: skip
    assert bad_role.exit_code == 2
    assert not real_api.requests_to("POST", "/users")[1:]  # refused before asking
    prompted = run_real(
        "user", "add", "carol", input="another good password 2\nanother good password 2\n"
    )
    assert prompted.exit_code == 0, prompted.output
    assert run_real("user", "remove", "alice").exit_code == 0
    names = [u["name"] for u in json.loads(run_real("user", "list", "--json").stdout)["items"]]
    assert "carol" in names and "alice" not in names


def test_tokens(run_real: Run, real_api: RealApi) -> None:
    created = run_real("token", "create", "ci", "--expires-in-days", "30")
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    with real_api.client(secret) as client:  # the one line on stdout is a working token
        assert client.get("/auth/whoami").json()["name"] == "admin"
    assert "shown only now" in created.stderr
    (request,) = real_api.requests_to("POST", "/tokens")
    assert json.loads(str(request[2])) == {"name": "ci", "expires_in_days": 30}
    forever = run_real("token", "create", "forever")  # no --expires-in-days: never expires
    assert forever.exit_code == 0, forever.output
    listed = run_real("token", "list")
    row = next(line for line in listed.stdout.splitlines() if " forever " in line)
    assert "never" in row
    row = next(line for line in listed.stdout.splitlines() if real_api.token_id in line)
    assert "never" not in row  # the module's token came from an API login: it expires
    assert real_api.token not in listed.output and secret not in listed.output
    unknown = "0" * 32
    revoked = run_real("token", "revoke", unknown)
    assert revoked.exit_code == 1 and revoked.stderr.startswith("error: ")
    assert unknown in revoked.stderr
    malformed = run_real("token", "revoke", "nope")
    assert malformed.exit_code == 1 and "error: token_id: " in malformed.stderr
    assert run_real("token", "create", "ci", "--expires-in-days", "0").exit_code == 2


def test_audit(run_real: Run, real_api: RealApi) -> None:
    with real_api.client() as admin:
        made = admin.post("/users", json={"name": "auditee", "role": "viewer",
                                          "password": "a viewer's password 3"})  # fmt: skip
        assert made.status_code == 201, made.text
    viewer = real_api.login("auditee", "a viewer's password 3")
    with real_api.client(viewer["secret"]) as client:
        assert client.delete("/vms/audited-vm").status_code == 403
    result = run_real("audit", "--limit", "10", "--user", "auditee", "--action", "vm.delete")
    assert result.exit_code == 0, result.output
    assert real_api.requests_to("GET", "/audit")[-1][3] == {
        "limit": "10", "user": "auditee", "action": "vm.delete"
    }  # fmt: skip
    (row,) = [line for line in result.stdout.splitlines() if "audited-vm" in line]
    assert "auditee" in row and "vm.delete" in row and "denied" in row
    entries = json.loads(run_real("audit", "--json").stdout)
    assert {"user": "auditee", "action": "vm.delete", "target": "audited-vm",
            "outcome": "denied"}.items() <= entries["items"][0].items()  # fmt: skip


def test_host_add_refuses_uris_outside_the_allow_list(run: Run, api: CannedApi) -> None:
    for uri in (
        "qemu+ext:///system?command=/tmp/x.sh",
        "qemu+unix:///system?socket=/run/libvirt/libvirt-sock",
        "qemu+ssh://root@h2/system?netcat=/tmp/x.sh",
        "test:///etc/shadow",
    ):
        refused = run("host", "add", "evil", uri)
        assert refused.exit_code == 2, refused.output
        assert "must be a libvirt URI Corral allows" in refused.stderr
    assert api.requests_to("POST", "/hosts") == []
