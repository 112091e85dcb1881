"""A guest that writes its disk continuously while the disk moves, and the proof afterwards.

The busybox test guest's shell writes record ``rec-I`` into sector I of ``/dev/vda`` (``dd``
with ``fsync``: each record reaches QEMU before the next), I = 0, 1, 2 … until stopped, and
keeps the last finished I in ``/tmp/last`` (replaced by a rename: a writer stopped
mid-update never leaves it empty). After a cold restart (no guest cache left) the
first I+1 sectors must hold exactly those records.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from corral.testbed.guest_domains import wait_until
from tests.integration.api._support import SerialShell, wait_log

_WRITER = (
    "(i=0; while :; do echo rec-$i | dd of=/dev/vda bs=512 seek=$i conv=notrunc,fsync "
    "2>/dev/null; echo $i > /tmp/last.new; mv /tmp/last.new /tmp/last; i=$((i+1)); done) "
    ">/dev/null 2>&1 & "
    "echo $! > /tmp/writer.pid"
)


def _number(out: bytes, name: str) -> int:
    # The console may replay earlier output: the answer is the last one.
    found = re.findall(rf"{name}=(\d+)".encode(), out)
    assert found, out[-600:]
    return int(found[-1])


def start_writer(shell: SerialShell) -> None:
    shell.run(_WRITER)
    wait_until(lambda: records_written(shell) > 2, 60, "the guest's first records")


def records_written(shell: SerialShell) -> int:
    """How many records the writer finished so far."""
    return _number(shell.run("echo LAST=$(( $(cat /tmp/last 2>/dev/null || echo -1) + 1 ))"),
                   "LAST")  # fmt: skip


def stop_writer(shell: SerialShell) -> int:
    """Stop the writer and flush; how many records it finished (a record being written when
    it stopped may be on disk as well)."""
    out = shell.run(
        "kill $(cat /tmp/writer.pid); sleep 1; sync; echo LAST=$(( $(cat /tmp/last) + 1 ))"
    )
    return _number(out, "LAST")


def records_on_disk(shell: SerialShell, count: int) -> int:
    """How many of the first ``count`` sectors hold their own record."""
    out = shell.run(
        f"i=0; ok=0; dd if=/dev/vda bs=512 count={count} 2>/dev/null | tr -s '\\000' '\\n' "
        '> /tmp/seen; while read line; do [ "$line" = "rec-$i" ] && ok=$((ok+1)); '
        "i=$((i+1)); done < /tmp/seen; echo OK=$ok",
        timeout=120,
    )
    return _number(out, "OK")


def restart(client: httpx.Client, name: str) -> None:
    """Force off and start again (a cold start: the guest's page cache is gone)."""
    assert client.post(f"/vms/{name}/stop").status_code == 200
    start(client, name)


def start(client: httpx.Client, name: str) -> None:
    """Start the shut-off VM and wait until its shell is up (this boot's marker)."""
    log_size = len(client.get(f"/vms/{name}/log").content)
    assert client.post(f"/vms/{name}/start").status_code == 200
    wait_log(client, name, rb"CORRAL-GUEST-BOOTED", start=log_size)


def disk_path(client: httpx.Client, name: str) -> Any:
    vm = client.get(f"/vms/{name}").json()
    return next(d["path"] for d in vm["disks"] if d["target"] == "vda")
