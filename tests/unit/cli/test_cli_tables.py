"""``tables.py``: the VM list read from JSON without the models, printed without Rich's Table."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from corral.cli.tables import STATE_STYLE, columns, state_text, vm_rows, vm_table
from corral.model.task import TaskState
from corral.model.vm import VmInfo, VmState
from tests.unit.cli.canned_api import vm_info


def _printed(text: object, *, color: bool = False) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=40, force_terminal=color, highlight=False)
    console.print(text, soft_wrap=True)
    return buffer.getvalue()


def test_rows_take_the_fields_of_the_api_s_vm_info() -> None:
    vms = [vm_info("web1"), vm_info("db1", VmState.SHUTOFF, "h2")]
    rows = vm_rows([vm.model_dump(mode="json") for vm in vms])
    assert [(r.name, r.host, r.state) for r in rows] == [
        ("web1", "local", "running"),
        ("db1", "h2", "shutoff"),
    ]
    assert set(vars(rows[0])) <= set(VmInfo.model_fields)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"items": []}, "not a list"),
        ([1], "0: not an object"),
        (
            [{"name": "a", "host": "h", "state": "running", "vcpus": "2", "memory_mib": 1}],
            "0.vcpus",
        ),
        (
            [{"name": "a", "host": "h", "state": "running", "vcpus": True, "memory_mib": 1}],
            "0.vcpus",
        ),
        ([{"name": "a", "host": "h", "state": "running", "vcpus": 1}], "0.memory_mib: None"),
    ],
)
def test_an_answer_that_is_not_a_vm_list_names_what_is_wrong(body: object, where: str) -> None:
    with pytest.raises(ValueError, match=where):
        vm_rows(body)


def test_columns_line_up_like_the_rich_tables_and_colour_only_the_state() -> None:
    rows = vm_rows([vm_info("a-long-name").model_dump(mode="json")])
    lines = _printed(vm_table(rows)).splitlines()
    assert lines[0].split() == ["NAME", "HOST", "STATE", "VCPUS", "MEMORY", "UPTIME", "CPU", "TIME"]
    assert lines[0].index("HOST") == lines[1].index("local") == len("a-long-name") + 2
    assert len(lines) == 2  # lines stay whole: a narrow terminal wraps them itself
    coloured = _printed(columns(["S"], [[state_text("running")]]), color=True)
    assert "\x1b[32mrunning" in coloured


def test_every_vm_and_task_state_has_a_colour() -> None:
    assert {str(s) for s in (*VmState, *TaskState)} <= set(STATE_STYLE)
