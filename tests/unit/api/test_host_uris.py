"""Host URIs are an allow-list (issue 13): through the real app, every form libvirt would use to
run a program, reach another socket or read a file is refused with 422 and the rule; nothing
runs, and no file's content reaches an answer, a log record or the audit log.

The local host of these apps is the test driver on a node file of its own: the local host's URI
is the administrator's (configuration, unchecked), so ``test:///default`` added through the API
is a second, distinct daemon.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.unit.api.conftest import NODE_XML, Api, running_api


@dataclass(frozen=True)
class Bait:
    """A file whose content must never be quoted, and a script that must never run."""

    canary: Path
    secret: str
    script: Path
    marker: Path


@pytest.fixture(scope="module")
def bait(tmp_path_factory: pytest.TempPathFactory) -> Bait:
    base = tmp_path_factory.mktemp("bait")
    secret = f"canary-{secrets.token_hex(8)}"
    canary = base / "shadow"
    canary.write_text(f"{secret}:$6$salt$hash:19000:0:99999:7:::\nsecond line\n")
    canary.chmod(0o600)
    marker = base / "ran"
    script = base / "x.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\n")
    script.chmod(0o755)
    return Bait(canary, secret, script, marker)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data_dir = tmp_path_factory.mktemp("uris")
    node = data_dir / "node.xml"
    node.write_text(NODE_XML)
    with running_api(data_dir, local_host_uri=f"test://{node}") as running:
        yield running


class Recorder(logging.Handler):
    """Every log record of the app's life, start-up included (caplog sees only a test's)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def start_log() -> Iterator[Recorder]:
    recorder = Recorder()
    root = logging.getLogger()
    level = root.level
    root.addHandler(recorder)
    root.setLevel(logging.DEBUG)
    yield recorder
    root.removeHandler(recorder)
    root.setLevel(level)


@pytest.fixture(scope="module")
def strict_api(
    tmp_path_factory: pytest.TempPathFactory, bait: Bait, start_log: Recorder
) -> Iterator[Api]:
    """allow_test_hosts off (the default), and a local host configured with a URI that names
    the canary file: it cannot be reached, and must not be quoted either."""
    data_dir = tmp_path_factory.mktemp("strict")
    with running_api(
        data_dir, local_host_uri=f"test://{bait.canary}", allow_test_hosts=False
    ) as running:
        yield running


def _refused_forms(bait: Bait) -> list[str]:
    script, canary = bait.script, bait.canary
    return [
        f"qemu+ext:///system?command={script}",
        f"qemu+ext://localhost/system?command={script}",
        "qemu+unix:///system?socket=/run/libvirt/libvirt-sock",
        "qemu:///system?socket=/run/libvirt/libvirt-sock",
        f"qemu+ssh://root@127.0.0.1/system?command={script}",
        f"qemu+ssh://root@127.0.0.1/system?netcat={script}",
        f"qemu+ssh://root@127.0.0.1/system?%63ommand={script}",
        f"qemu+ssh://root@127.0.0.1/system?keyfile=/k;command={script}",
        f"qemu+ssh://-oProxyCommand={script}/system",
        f"qemu+tls://127.0.0.1/system?pkipath=/x&command={script}",
        f"test://{canary}",
        f"test:///{canary}",
        "test:///etc/shadow",
        "qemu+tcp://127.0.0.1/system",
        "qemu+libssh2://root@127.0.0.1/system",
    ]


def _audit_text(api: Api) -> str:
    entries = api.client.get("/api/v1/audit?limit=500", headers=api.headers()).json()["items"]
    return repr(entries)


def test_each_refused_form_answers_422_and_nothing_runs_or_leaks(
    api: Api, bait: Bait, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for index, uri in enumerate(_refused_forms(bait)):
        name = f"evil{index}"
        answer = api.client.post(
            "/api/v1/hosts", json={"name": name, "uri": uri}, headers=api.headers()
        )
        assert answer.status_code == 422, (uri, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        detail = answer.json()["detail"]
        assert detail.startswith("uri: ") and "qemu:///system" in detail, (uri, detail)
        assert "qemu+ssh://[USER@]HOST[:PORT]/system" in detail
        assert bait.secret not in answer.text
        assert api.client.get(f"/api/v1/hosts/{name}", headers=api.headers()).status_code == 404
    assert not bait.marker.exists(), "a refused URI ran its command"
    assert bait.secret not in caplog.text
    assert bait.secret not in _audit_text(api)


def test_a_repeated_parameter_or_a_path_with_dots_is_refused(api: Api) -> None:
    for uri, says in [
        ("qemu+ssh://h2/system?no_tty=1&no_tty=0", "'no_tty' is given twice"),
        ("qemu+tls://h2/system?pkipath=/var/../etc", "pkipath must be a path without '..'"),
    ]:
        answer = api.client.post(
            "/api/v1/hosts", json={"name": "dotty", "uri": uri}, headers=api.headers()
        )
        assert answer.status_code == 422, answer.text
        assert says in answer.json()["detail"]


def test_path_parameters_must_name_corrals_own_directories(api: Api) -> None:
    data_dir = api.services.settings.data_dir
    pkipath = api.services.pki.libvirt_pkipath
    refused = [
        ("qemu+tls://127.0.0.1:1/system?pkipath=/etc/pki/libvirt", f"{pkipath}"),
        ("qemu+ssh://root@127.0.0.1:1/system?keyfile=/root/.ssh/id_rsa", f"{data_dir / 'ssh'}"),
        (f"qemu+ssh://root@127.0.0.1:1/system?keyfile={data_dir}/ssh/a/b", f"{data_dir}/ssh"),
    ]
    for uri, names in refused:
        answer = api.client.post(
            "/api/v1/hosts", json={"name": "pathy", "uri": uri}, headers=api.headers()
        )
        assert answer.status_code == 422, (uri, answer.text)
        assert names in answer.json()["detail"]
    # Corral's own directory is allowed: the URI gets as far as connecting (nothing listens).
    answer = api.client.post(
        "/api/v1/hosts",
        json={"name": "pathy", "uri": f"qemu+tls://127.0.0.1:1/system?pkipath={pkipath}"},
        headers=api.headers(),
    )
    assert answer.status_code == 503, answer.text
    assert "cannot connect" in answer.json()["detail"]
    assert api.client.get("/api/v1/hosts/pathy", headers=api.headers()).status_code == 404


def test_add_and_remove_a_host(api: Api) -> None:
    added = api.client.post(
        "/api/v1/hosts",
        json={"name": "second", "uri": "test:///default", "accelerator": "tcg"},
        headers=api.headers(),
    )
    assert added.status_code == 201, added.text
    assert added.json()["connected"] is True and added.json()["accelerator"] == "tcg"
    names = [
        h["name"] for h in api.client.get("/api/v1/hosts", headers=api.headers()).json()["items"]
    ]
    assert names == ["second", "test"]  # by name
    dup = api.client.post(
        "/api/v1/hosts", json={"name": "second", "uri": "test:///default"}, headers=api.headers()
    )
    assert dup.status_code == 409
    assert "a host named 'second' already exists" in dup.json()["detail"]
    assert api.client.delete("/api/v1/hosts/second", headers=api.headers()).status_code == 204
    assert api.client.get("/api/v1/hosts/second", headers=api.headers()).status_code == 404


def test_concurrent_registrations_of_one_host_leave_one(api: Api) -> None:
    def add(index: int) -> int:
        answer = api.client.post(
            "/api/v1/hosts",
            json={"name": f"twin{index}", "uri": "test:///default"},
            headers=api.headers(),
        )
        return answer.status_code

    with ThreadPoolExecutor(9) as pool:
        statuses = sorted(pool.map(add, range(9)))
    assert statuses == [201] + [409] * 8
    hosts = api.client.get("/api/v1/hosts", headers=api.headers()).json()["items"]
    twins = [h["name"] for h in hosts if h["name"].startswith("twin")]
    assert len(twins) == 1
    assert api.client.delete(f"/api/v1/hosts/{twins[0]}", headers=api.headers()).status_code == 204


def test_the_test_driver_needs_allow_test_hosts(strict_api: Api) -> None:
    answer = strict_api.client.post(
        "/api/v1/hosts",
        json={"name": "sim", "uri": "test:///default"},
        headers=strict_api.headers(),
    )
    assert answer.status_code == 422, answer.text
    assert "allow_test_hosts" in answer.json()["detail"]
    assert (
        strict_api.client.get("/api/v1/hosts/sim", headers=strict_api.headers()).status_code == 404
    )


def test_a_configured_uri_that_reads_a_file_does_not_quote_it(
    strict_api: Api, bait: Bait, start_log: Recorder
) -> None:
    """The administrator's own local host URI names the canary: libvirt's test driver fails to
    parse it and says so with its first line; Corral reports libvirt's error code instead."""
    hosts = strict_api.client.get("/api/v1/hosts", headers=strict_api.headers())
    (local,) = hosts.json()["items"]
    assert local["connected"] is False
    assert "libvirt could not parse what it read (libvirt error" in local["last_error"]
    assert "virsh -c" in local["last_error"]
    assert bait.secret not in hosts.text
    logged = "\n".join(start_log.lines)
    assert "is not reachable yet" in logged  # the start-up warning was captured
    assert bait.secret not in logged
    assert bait.secret not in _audit_text(strict_api)
