"""hosts, users, tokens and the audit log."""

from __future__ import annotations

import json

from corral.model.auth import AuditEntry
from tests.unit.cli.canned_api import NOW, vm_info
from tests.unit.cli.conftest import CannedApi, Run


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


def test_users(run: Run, api: CannedApi) -> None:
    added = run("user", "add", "alice", "--role", "operator", "--password-stdin",
                input="a long enough password 1\n")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "added user alice (operator)" in added.stdout
    (request,) = api.requests_to("POST", "/users")
    assert json.loads(str(request[2]))["password"] == "a long enough password 1"
    assert "a long enough password 1" not in added.output
    listed = run("user", "list", "--json")
    assert [u["name"] for u in json.loads(listed.stdout)] == ["alice"]
    short = run("user", "add", "bob", "--password-stdin", input="short\n")
    assert short.exit_code == 2 and "password" in short.stderr
    bad_role = run("user", "add", "bob", "--role", "god", "--password-stdin", input="x" * 20)
    assert bad_role.exit_code == 2
    prompted = run(
        "user", "add", "carol", input="another good password 2\nanother good password 2\n"
    )
    assert prompted.exit_code == 0, prompted.output
    assert run("user", "remove", "alice").exit_code == 0


def test_tokens(run: Run, api: CannedApi) -> None:
    created = run("token", "create", "ci", "--expires-in-days", "30")
    assert created.exit_code == 0, created.output
    assert created.stdout.strip() == "new-secret-for-ci"
    assert "shown only now" in created.stderr
    (request,) = api.requests_to("POST", "/tokens")
    assert json.loads(str(request[2])) == {"name": "ci", "expires_in_days": 30}
    listed = run("token", "list")
    assert "t1" in listed.stdout and "never" in listed.stdout
    assert api.state.token not in listed.output
    revoked = run("token", "revoke", "nope")
    assert revoked.exit_code == 1 and "error: no token nope" in revoked.stderr
    assert run("token", "create", "ci", "--expires-in-days", "0").exit_code == 2


def test_audit(run: Run, api: CannedApi) -> None:
    api.state.audit = [
        AuditEntry(id=7, at=NOW, user="admin", action="vm.create", target="web1", outcome="ok"),
        AuditEntry(id=8, at=NOW, user="bob", action="vm.delete", target="web1",
                   outcome="denied", detail="viewer may not delete VMs"),
    ]  # fmt: skip
    result = run("audit", "--limit", "10", "--user", "bob", "--action", "vm.delete")
    assert result.exit_code == 0, result.output
    assert api.requests_to("GET", "/audit")[-1][3] == {
        "limit": "10", "user": "bob", "action": "vm.delete"
    }  # fmt: skip
    assert "viewer may not delete VMs" in result.stdout
    assert json.loads(run("audit", "--json").stdout)[0]["action"] == "vm.create"
