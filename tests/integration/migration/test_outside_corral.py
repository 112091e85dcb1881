"""A VM migrated with ``virsh`` behind Corral's back (peer-to-peer over the test bed's TLS,
``--persistent --undefinesource``): the inventory shows it on its new host within 2 s of
libvirt's event on the destination, never ``missing`` on the way, and Corral migrates it back.

What libvirt said, and when, comes from ``virsh event`` on each host (the harness's own look);
what Corral says comes from polling its API the whole time.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import httpx
import pytest

from corral.testbed.corral_server import CorralServer
from corral.testbed.guest_domains import wait_until
from corral.testbed.guest_images import KernelGuest
from corral.testbed.multihost import MultiHostTestbed
from tests.integration.migration.test_live_migration import (
    Heartbeat,
    make_guest,
    migrate,
    remove_guest,
    running_on,
)

pytestmark = pytest.mark.integration

NAME = "mig-outsider"
# virsh event --timestamp: "2026-12-06 18:40:00.123+0000: event 'lifecycle' for domain
# 'NAME': Resumed Migrated"
_EVENT = re.compile(
    r"^(\S+ \S+): event 'lifecycle' for domain '?([^':]+)'?: (\w+) (\w+)", re.MULTILINE
)


@pytest.fixture(scope="module")
def api(multihost_corral: CorralServer) -> Iterator[httpx.Client]:
    with multihost_corral.client() as client:
        yield client


@pytest.fixture(scope="module")
def outsider(api: httpx.Client, kernel_guest: KernelGuest) -> Iterator[str]:
    make_guest(api, kernel_guest, NAME, "h1")
    yield NAME
    remove_guest(api, NAME)


class Events:
    """``virsh event --all --loop --timestamp`` on one host, for the duration of a block."""

    def __init__(self, uri: str) -> None:
        self._uri = uri
        self.lines = ""

    def __enter__(self) -> Events:
        self._proc = subprocess.Popen(
            ["stdbuf", "-oL", "virsh", "-c", self._uri, "event", "--all", "--loop",
             "--timestamp"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        time.sleep(0.5)  # registered before anything happens
        return self

    def __exit__(self, *exc: object) -> None:
        self._proc.send_signal(signal.SIGINT)  # virsh ends its event loop cleanly
        try:
            self.lines, _ = self._proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self.lines, _ = self._proc.communicate()

    def at(self, name: str, event: str, detail: str) -> float:
        """When libvirt reported ``event detail`` for domain ``name`` (epoch seconds)."""
        for stamp, domain, kind, why in _EVENT.findall(self.lines):
            if (domain, kind, why) == (name, event, detail):
                return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f%z").timestamp()
        raise AssertionError(f"no {event} {detail} event for {name}: {self.lines}")


@dataclass(frozen=True)
class Sample:
    at: float  # when the answer arrived (epoch seconds)
    host: str
    state: str


class Watcher:
    """Reads the VM through Corral's API (show and list in turn) until stopped."""

    def __init__(self, server: CorralServer, name: str) -> None:
        self._server, self._name = server, name
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        with self._server.client() as client:
            turn = 0
            while not self._stop.is_set():
                turn += 1
                try:
                    if turn % 2:
                        vm = client.get(f"/vms/{self._name}").json()
                    else:
                        listed = client.get("/vms").json()["items"]
                        vm = next(v for v in listed if v["name"] == self._name)
                    sample = Sample(time.time(), vm["host"], vm["state"])
                except (httpx.HTTPError, KeyError, StopIteration) as exc:
                    sample = Sample(time.time(), "?", f"unreadable: {exc!r}")
                self.samples.append(sample)
                time.sleep(0.02)

    def first_on(self, host: str) -> float:
        """When Corral first answered ``host`` (it must say so from then on)."""
        hosts = [s.host for s in self.samples]
        assert host in hosts, self.samples[-5:]
        first = hosts.index(host)
        assert set(hosts[first:]) == {host}, [s for s in self.samples[first:] if s.host != host]
        return self.samples[first].at


def test_a_vm_moved_with_virsh_follows_at_once_and_corral_migrates_it_back(
    api: httpx.Client,
    multihost_corral: CorralServer,
    testbed: MultiHostTestbed,
    outsider: str,
) -> None:
    running_on(api, outsider, "h1")
    h1, h2 = testbed.host("h1"), testbed.host("h2")
    heartbeat = Heartbeat(api, testbed, outsider, "h2")
    with (
        Events(h1.unix_uri) as source,
        Events(h2.unix_uri) as destination,
        Watcher(multihost_corral, outsider) as watcher,
    ):
        # As an administrator would, over the test bed's TLS (hosts refuse plain streams).
        moved = subprocess.run(
            ["virsh", "-c", h1.unix_uri, "migrate", "--live", "--p2p", "--persistent",
             "--undefinesource", "--tls", outsider, f"qemu+tls://{h2.address}/system",
             f"tcp://{h2.address}"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert moved.returncode == 0, moved.stderr
        wait_until(lambda: watcher.samples[-1:] and watcher.samples[-1].host == "h2", 10, "h2")
        time.sleep(1)  # and it stays there
    runs_there = destination.at(outsider, "Resumed", "Migrated")
    source.at(outsider, "Stopped", "Migrated")
    gone = subprocess.run(["virsh", "-c", h1.unix_uri, "list", "--all", "--name"],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert gone.returncode == 0 and outsider not in gone.stdout.split()  # undefined there
    shown = watcher.first_on("h2")
    assert shown - runs_there < 2.0, (shown - runs_there, destination.lines)
    states = {s.state for s in watcher.samples}
    assert states <= {"running", "paused"}, watcher.samples  # never missing, never unreadable
    running_on(api, outsider, "h2")
    heartbeat.goes_on()
    # Corral knows where it is: its own migration takes it back.
    task = migrate(api, outsider, "h1")
    assert task["state"] == "succeeded", task["error"]
    running_on(api, outsider, "h1")
