"""``local_host_accelerator`` applies at every start, not only the first one.

An administrator who finds that KVM guests hang on a host (broken nested virtualization) sets
``CORRAL_LOCAL_HOST_ACCELERATOR=tcg`` and restarts; the setting used to be read only when the
database was created, so the local host kept ``kvm`` and every start failed the same way.
"""

from __future__ import annotations

from pathlib import Path

from tests.unit.api.conftest import Api, running_api


def _local(api: Api) -> dict[str, object]:
    answer = api.client.get("/api/v1/hosts/test", headers=api.headers())
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_a_later_start_applies_the_configured_accelerator(tmp_path: Path) -> None:
    with running_api(tmp_path) as first:
        assert _local(first)["accelerator"] is None
    with running_api(tmp_path, local_host_accelerator="tcg") as second:
        assert _local(second)["accelerator"] == "tcg"
        assert second.services.hosts.get("test").forced_accelerator == "tcg"
    # Unset again: the host keeps what was last configured (the database is the record).
    with running_api(tmp_path) as third:
        assert _local(third)["accelerator"] == "tcg"
