"""``corral power plan|apply|status`` and ``corral host power|power-on|power-off``: what they
send, what they print (and that a BMC password never shows).

A host's power settings run against the real app; plans, their application, the status of
several hosts and switching hosts stay canned (checked against /openapi.json): they need hosts
the test driver cannot give."""

from __future__ import annotations

import json
from pathlib import Path

from corral.model.placement import Migration, Plan, PolicySettings
from corral.model.power import PowerPlan, PowerPolicyMode
from tests.unit.cli.canned_api import NOW, vm_info
from tests.unit.cli.conftest import CannedApi, RealApi, Run

PLAN_ID = "ab" * 16
SECRET = "Bmc-pw-never-shown"


def _plan(*, empty: bool = False) -> dict[str, object]:
    move = Migration(
        vm="web3", source="h3", target="h1", memory_mib=320, vcpus=1, reason="empty h3"
    )
    plan = Plan(
        settings=PolicySettings(),
        migrations=() if empty else (move,),
        standby=() if empty else ("h3",),
        watts_before=330.0,
        watts_after=220.0 if not empty else 330.0,
        reasons=() if empty else ("h3 at 2 % CPU for 2 min < low 20 %: move its 1 VM",),
    )
    made = PowerPlan(
        id=PLAN_ID,
        created_at=NOW,
        mode=PowerPolicyMode.MANUAL,
        plan=plan,
        notes=["h1 is never emptied for standby: no power driver that can switch it off"],
    )
    return made.model_dump(mode="json")


def test_plan_shows_the_steps_the_watts_and_how_to_apply(run: Run, api: CannedApi) -> None:
    api.state.power_plan = _plan()
    result = run("power", "plan")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"plan {PLAN_ID} (manual mode)" in out
    assert "migrate" in out and "web3: h3 → h1" in out and "standby" in out
    assert "estimated power: 330 W now → 220 W after (110 W saved)" in out
    assert "note: h1 is never emptied for standby" in out
    assert f"apply it with: corral power apply --plan {PLAN_ID}" in out


def test_an_empty_plan_says_so_and_json_is_the_api_answer(run: Run, api: CannedApi) -> None:
    api.state.power_plan = _plan(empty=True)
    result = run("power", "plan")
    assert result.exit_code == 0, result.output
    assert "nothing to do: the cluster is as the policy wants it" in result.stdout
    assert "corral power apply" not in result.stdout
    as_json = run("power", "plan", "--json")
    assert json.loads(as_json.stdout) == api.state.power_plan


def test_apply_sends_the_reviewed_plan_and_reports_a_replan(run: Run, api: CannedApi) -> None:
    api.state.task_plans["power.apply"] = [
        {"state": "running", "progress": 0.5, "phase": "step 2/2: standby h3"},
        {
            "state": "succeeded",
            "progress": 1,
            "phase": "done",
            "result": {
                "replanned": True,
                "stale_reasons": ["VM web3 is on h2 now, not h3"],
                "woken": [],
                "migrations": [{"vm": "web3", "source": "h2", "target": "h1"}],
                "standby": ["h2"],
                "watts_before": 330.0,
                "watts_after": 220.0,
            },
        },
    ]
    result = run("power", "apply", "--plan", PLAN_ID)
    assert result.exit_code == 0, result.output
    [(_m, _p, body, _q)] = api.requests_to("POST", "/power/apply")
    assert json.loads(str(body)) == {"plan_id": PLAN_ID}
    assert "the plan was stale (VM web3 is on h2 now, not h3): Corral planned again" in (
        result.output
    )
    assert "applied: woke no host, 1 migration(s), standby h2; about 220 W (was 330 W)" in (
        result.output
    )


def test_apply_without_a_plan_plans_now_and_an_expired_plan_is_a_clear_error(
    run: Run, api: CannedApi
) -> None:
    assert run("power", "apply", "--no-wait").exit_code == 0
    [(_m, _p, body, _q)] = api.requests_to("POST", "/power/apply")
    assert json.loads(str(body)) == {}
    result = run("power", "apply", "--plan", "0" * 32)
    assert result.exit_code != 0
    assert "get a new one with corral power plan" in result.stderr


def test_apply_that_fails_exits_non_zero_with_the_task_error(run: Run, api: CannedApi) -> None:
    error = "power off host h3: the BMC of host h3 at 10.0.0.13:623 refused the login"
    api.state.task_plans["power.apply"] = [{"state": "failed", "error": error}]
    result = run("power", "apply")
    assert result.exit_code != 0
    assert error in result.stderr


def test_plan_and_status_say_what_their_watts_are(run_real: Run) -> None:
    """Two estimates from different inputs: the outputs say which, so that a plan's "now" and
    the status's total may differ without looking like a mistake."""
    plan = run_real("power", "plan")
    assert plan.exit_code == 0, plan.output
    said = " ".join(plan.stdout.split())
    assert "estimated power: 100 W now → 100 W after (0 W saved)" in said
    assert "modelled: the hosts' power models at the CPU use of the VMs on them" in said
    assert "`corral power status` models each host's measured CPU use instead" in said
    status = run_real("power", "status")
    assert status.exit_code == 0, status.output
    said = " ".join(status.stdout.split())
    assert "about 100 W in all" in said
    assert "WATTS: the host's power model at its measured CPU use (everything it runs)" in said
    assert "`corral power plan` counts only the VMs' CPU use" in said


def test_status_shows_each_host_and_the_mode(run: Run, api: CannedApi) -> None:
    api.state.power_status = {
        "mode": "auto",
        "placement_policy": "power_saving",
        "watts": 235.0,
        "running_task": "task-9",
        "hosts": [
            {"name": "h1", "status": "connected", "standby": False, "driver": None,
             "cpu": 0.25, "memory_used_mib": 1024, "watts": 137.5},
            {"name": "h3", "status": "standby", "standby": True, "driver": "ipmi",
             "can_power_on": True, "can_power_off": True, "watts": 10.0},
        ],
    }  # fmt: skip
    result = run("power", "status")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    h1 = next(line for line in lines if line.startswith("h1"))
    h3 = next(line for line in lines if line.startswith("h3"))
    assert h1.split() == ["h1", "connected", "-", "-", "25", "%", "138"]
    assert h3.split() == ["h3", "standby", "ipmi", "on/off", "-", "10"]
    assert "mode auto, policy power_saving, about 235 W in all; power task task-9 running" in (
        result.output
    )


def test_host_power_ipmi_reads_the_password_file_and_never_prints_it(
    run_real: Run, real_api: RealApi, tmp_path: Path
) -> None:
    secret = tmp_path / "pw"
    secret.write_text(SECRET + "\n")
    result = run_real(
        "host", "power", "test", "--driver", "ipmi", "--address", "10.0.0.13",
        "--user", "admin", "--password-file", str(secret), "--idle-w", "80",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [(_m, _p, body, _q)] = real_api.requests_to("PUT", "/hosts/test/power")
    sent = json.loads(str(body))
    assert sent["driver"] == {
        "driver": "ipmi", "address": "10.0.0.13", "port": 623, "user": "admin",
        "password": SECRET,
    }  # fmt: skip
    assert sent["model"] == {"idle_w": 80.0, "max_w": 250.0, "standby_w": 10.0}
    assert SECRET not in result.output
    assert "set (encrypted)" in result.stdout
    assert "80 W idle → 250 W busy, 10 W standby" in result.stdout
    shown = run_real("host", "power", "test")
    assert shown.exit_code == 0 and SECRET not in shown.output
    assert "ipmi" in shown.stdout


def test_host_power_bad_input_is_refused_before_any_request(
    run_real: Run, real_api: RealApi, tmp_path: Path
) -> None:
    cases = [
        (("--driver", "ipmi", "--address", "10.0.0.13"), "ipmi needs --address and --user"),
        (("--driver", "wol"), "wol needs --mac"),
        (("--driver", "teleport"), "unknown driver 'teleport'"),
        (("--driver", "wol", "--mac", "not-a-mac"), "mac"),
        (("--driver", "ssh", "--wake-broadcast", "10.0.0.255"), "--wake-broadcast needs"),
        (("--driver", "ipmi", "--address", "10.0.0.13", "--user", "admin",
          "--password-file", str(tmp_path / "missing")), "cannot read"),
    ]  # fmt: skip
    for args, words in cases:
        result = run_real("host", "power", "test", *args)
        assert result.exit_code == 2, (args, result.output)
        assert words in result.stderr, (args, result.stderr)
    assert real_api.requests_to("PUT", "/hosts/test/power") == []


def test_host_power_none_removes_the_driver_and_keeps_the_model(
    run_real: Run, real_api: RealApi
) -> None:
    model = {"idle_w": 80.0, "max_w": 200.0, "standby_w": 5.0}
    with real_api.client() as client:
        made = client.put("/hosts/test/power", json={
            "driver": {"driver": "wol", "mac": "52:54:00:12:34:56"}, "model": model,
        })  # fmt: skip
        assert made.status_code == 200, made.text
    result = run_real("host", "power", "test", "--driver", "none")
    assert result.exit_code == 0, result.output
    (_m, _p, body, _q) = real_api.requests_to("PUT", "/hosts/test/power")[-1]
    assert json.loads(str(body)) == {"driver": None, "model": model}
    assert "host test has no power driver now" in result.output
    with real_api.client() as client:
        now = client.get("/hosts/test/power").json()
    assert now["driver"] is None and now["model"] == model


def test_power_on_and_off_follow_their_task(run: Run, api: CannedApi) -> None:
    result = run("host", "power-on", "h3")
    assert result.exit_code == 0, result.output
    assert "host h3 is on" in result.output
    assert run("host", "power-off", "h3").exit_code == 0
    assert len(api.requests_to("POST", "/hosts/h3/power-off")) == 1
    api.state.vms["web1"] = vm_info("web1", host="h2")
    refused = run("host", "power-off", "h2")
    assert refused.exit_code != 0
    assert "host h2 still has VMs: move them away first" in refused.stderr
