"""What the HA tests and ``bench/ha.py`` share: a watcher that lists every test-bed host's
running domains (through each host's own socket, not Corral) to catch a VM running twice, and
a cut of Corral's libvirt link to a host."""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator

from corral.testbed.multihost import MultiHostTestbed, TestbedHost, qemu_processes

LIBVIRT_TLS_PORT = "16514"


@contextlib.contextmanager
def cut_from_corral(host: TestbedHost) -> Iterator[None]:
    """Drop libvirt's TLS port in ``host``'s namespace: Corral's connection goes silent (no
    reset: a cut cable, not a refusal) while the host and its VMs run on."""
    rule = ["-p", "tcp", "--dport", LIBVIRT_TLS_PORT, "-j", "DROP"]
    base = ["ip", "netns", "exec", host.netns, "iptables"]
    subprocess.run([*base, "-I", "INPUT", *rule], check=True, timeout=30)
    try:
        yield
    finally:
        subprocess.run([*base, "-D", "INPUT", *rule], check=False, timeout=30)


class TwiceWatcher:
    """Lists every host's running domains about three times a second until stopped.
    ``most``: each VM's most hosts at one look; ``double_runs``: looks at which a VM ran on two
    hosts. libvirt lists a domain as running while a libvirtd that just came back looks at
    it, so only live QEMU processes count (``listed_twice``: looks where libvirt said two and
    one QEMU ran)."""

    def __init__(self, testbed: MultiHostTestbed, names: set[str]) -> None:
        self._testbed, self._names = testbed, names
        self.most: Counter[str] = Counter()
        self.double_runs = 0
        self.listed_twice = 0
        self.looks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TwiceWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def running(self) -> dict[str, list[str]]:
        """The watched VMs libvirt lists as running, with their hosts."""
        where: dict[str, list[str]] = {}
        for host in self._testbed.hosts:
            listed = subprocess.run(["virsh", "-c", host.unix_uri, "list", "--name"],
                                    capture_output=True, text=True, timeout=30)  # fmt: skip
            if listed.returncode == 0:
                for name in listed.stdout.split():
                    if name in self._names:
                        where.setdefault(name, []).append(host.name)
        return where

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, hosts in self.running().items():
                if len(hosts) > 1:
                    live = [h for h in hosts if qemu_processes(self._testbed.host(h).netns, name)]
                    self.double_runs += len(live) > 1
                    self.listed_twice += len(live) <= 1
                    hosts = live
                self.most[name] = max(self.most[name], len(hosts))
            self.looks += 1
            time.sleep(0.3)
