"""/metrics: a token by default, open only where metrics_public says so; a scrape renders what
the background refresher gathered and calls no host."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from corral.model.auth import Role
from corral.testbed.guest_domains import wait_until
from tests.unit.api.conftest import Api, running_api


@pytest.fixture(scope="module")
def public_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """metrics_public, and a refresh interval no test outlives: only start-up's refresh."""
    with running_api(
        tmp_path_factory.mktemp("public"), metrics_public=True, metrics_interval_s=3600
    ) as running:
        yield running


def test_metrics_need_a_token_by_default(api: Api) -> None:
    anonymous = api.client.get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert "corral_" not in anonymous.text
    bad = api.client.get("/metrics", headers={"Authorization": "Bearer crl_nonsense"})
    assert bad.status_code == 401
    for role in Role:
        answer = api.client.get("/metrics", headers=api.headers(role))
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/plain")
        assert "corral_hosts_connected" in answer.text


def test_metrics_public_opens_them(public_api: Api) -> None:
    answer = public_api.client.get("/metrics")
    assert answer.status_code == 200
    assert 'corral_vms{state="running"}' in answer.text


def test_a_scrape_calls_no_host(public_api: Api) -> None:
    refresher = public_api.services.metrics
    before = refresher.refreshes
    assert before >= 1  # start-up's
    for _ in range(20):
        assert public_api.client.get("/metrics").status_code == 200
    assert refresher.refreshes == before


def test_values_are_refreshed_in_the_background(tmp_path_factory: pytest.TempPathFactory) -> None:
    with running_api(tmp_path_factory.mktemp("fast"), metrics_interval_s=0.2) as running:
        refresher = running.services.metrics
        start = refresher.refreshes
        wait_until(lambda: refresher.refreshes >= start + 3, 10, "three background refreshes")
