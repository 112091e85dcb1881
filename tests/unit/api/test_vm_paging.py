"""``GET /vms`` pages (filters, sorts, cursors) and ``GET /vms/summary`` on the test driver."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.api.conftest import Api

#: Made once per module: shut off, except those started below.
NAMES = [f"pg-{i:02d}" for i in range(7)]
RUNNING = {"pg-01", "pg-04"}


@pytest.fixture(scope="module", autouse=True)
def vms(api: Api) -> None:
    for name in NAMES:
        spec = {"name": name, "disks": [{"size_gib": 1}], "nics": []}
        made = api.client.post("/api/v1/vms", json=spec, headers=api.headers())
        assert made.status_code == 201, made.text
    for name in RUNNING:
        started = api.client.post(f"/api/v1/vms/{name}/start", headers=api.headers())
        assert started.status_code == 200, started.text


def _get(api: Api, **params: Any) -> dict[str, Any]:
    answer = api.client.get("/api/v1/vms", params=params, headers=api.headers())
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def _all(api: Api, **params: Any) -> list[dict[str, Any]]:
    """Every page, following the cursors."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        page = _get(api, **params, **({"cursor": cursor} if cursor else {}))
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the cursors never ended")


def _names(items: list[dict[str, Any]]) -> list[str]:
    return [v["name"] for v in items if v["name"].startswith("pg-")]


def test_pages_follow_the_cursor_through_every_vm_once(api: Api) -> None:
    first = _get(api, limit=3)
    assert set(first) == {"items", "next_cursor"} and len(first["items"]) == 3
    paged = _all(api, limit=3)
    whole = _get(api, limit=1000)
    assert whole["next_cursor"] is None
    assert [v["name"] for v in paged] == [v["name"] for v in whole["items"]]
    assert _names(paged) == NAMES


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("-name", NAMES[::-1]),
        ("created", NAMES),
        ("-created", NAMES[::-1]),
        ("host", NAMES),
        ("state", [n for n in NAMES if n in RUNNING] + [n for n in NAMES if n not in RUNNING]),
        # Ties go by name in the sort's direction.
        ("-state", [n for n in NAMES[::-1] if n not in RUNNING] + sorted(RUNNING, reverse=True)),
    ],
)
def test_each_sort_pages_in_its_order(api: Api, sort: str, expected: list[str]) -> None:
    assert _names(_all(api, sort=sort, limit=2, name_prefix="pg-")) == expected


def test_filters_narrow_the_pages(api: Api) -> None:
    assert _names(_all(api, state="running", limit=1)) == sorted(RUNNING)
    assert _names(_all(api, name_prefix="pg-0", limit=4)) == NAMES
    assert _names(_all(api, name_prefix="pg-03")) == ["pg-03"]
    arch = _get(api, name_prefix="pg-00")["items"][0]["arch"]  # what the test driver says
    assert _names(_all(api, arch=arch, name_prefix="pg-", limit=5)) == NAMES
    assert _all(api, arch="s390x") == []
    assert _names(_all(api, host="test", limit=2)) == NAMES


def _refused(api: Api, **params: Any) -> str:
    answer = api.client.get("/api/v1/vms", params=params, headers=api.headers())
    assert answer.status_code == 422, answer.text
    return str(answer.json()["detail"])


def test_a_cursor_from_another_query_is_refused(api: Api) -> None:
    cursor = _get(api, limit=2, sort="name")["next_cursor"]
    assert cursor is not None
    for other in ({"sort": "-name"}, {"state": "running"}, {"name_prefix": "pg"}):
        assert "another query" in _refused(api, limit=2, cursor=cursor, **other)
    # The limit is no filter: the next page may be of another size.
    assert len(_get(api, limit=5, cursor=cursor)["items"]) == 5
    forged = cursor[:-3] + ("AAA" if not cursor.endswith("AAA") else "BBB")
    assert "not a cursor Corral issued" in _refused(api, cursor=forged)


@pytest.mark.parametrize("limit", [0, -1, 1001, "many"])
def test_a_limit_out_of_range_is_refused(api: Api, limit: object) -> None:
    _refused(api, limit=limit)


def test_unknown_host_state_or_sort_is_refused(api: Api) -> None:
    assert (
        api.client.get("/api/v1/vms", params={"host": "nope"}, headers=api.headers()).status_code
        == 404
    )
    _refused(api, state="sleeping")
    _refused(api, sort="size")


def test_the_summary_counts_by_state_and_host(api: Api) -> None:
    answer = api.client.get("/api/v1/vms/summary", headers=api.headers())
    assert answer.status_code == 200, answer.text
    summary = answer.json()
    whole = _get(api, limit=1000)["items"]
    assert summary["total"] == len(whole) == sum(summary["by_host"].values())
    assert sum(summary["by_state"].values()) == len(whole)
    running = [v for v in whole if v["state"] == "running"]
    assert summary["by_state"]["running"] == len(running) >= len(RUNNING)
    assert summary["by_host"]["test"] >= len(NAMES)


def test_the_summary_path_is_no_vm(api: Api) -> None:
    for method in ("DELETE", "PATCH", "OPTIONS"):
        answer = api.client.request(method, "/api/v1/vms/summary", headers=api.headers())
        assert answer.status_code == 405, (method, answer.text)
        assert answer.headers["allow"] == "GET"
    other = api.client.request("OPTIONS", "/api/v1/vms/pg-00", headers=api.headers())
    assert other.headers["allow"] == "DELETE, GET, PATCH"


@pytest.mark.parametrize("path", ["/api/v1/vms", "/api/v1/vms/pg-00/clone"])
def test_no_new_vm_can_be_named_summary_the_counts_path(api: Api, path: str) -> None:
    before = [v["name"] for v in _all(api)]
    refused = api.client.post(path, json={"name": "summary"}, headers=api.headers())
    assert refused.status_code == 422, refused.text
    assert "'summary' is reserved" in refused.text and "choose another VM name" in refused.text
    assert [v["name"] for v in _all(api)] == before
