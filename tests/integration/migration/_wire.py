"""What the tests put on the test bed's wire: a packet capture on the bridge, and a relay in
the migration path that flips one byte (a man in the middle), reached through a DNAT rule in
the source host's network namespace. Everything stays on 198.18.SLOT.0/24."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from corral.testbed.guest_images import CANARY
from corral.testbed.multihost import MultiHostTestbed, TestbedHost

#: QEMU's migration ports (qemu.conf migration_port_min/max defaults).
MIGRATION_PORTS = (49152, 49215)


@contextlib.contextmanager
def capture(testbed: MultiHostTestbed, pcap: Path, expression: str = "tcp") -> Iterator[Path]:
    """tcpdump on the bridge (every packet ``expression`` matches, whole: by default every
    TCP packet) while the block runs."""
    process = subprocess.Popen(
        ["tcpdump", "-i", testbed.bridge, "-s", "0", "-U", "-w", str(pcap), expression],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while not pcap.exists() or pcap.stat().st_size == 0:  # the header is written at start
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tcpdump did not start: {process.stderr.read()!r}")  # type: ignore[union-attr]
            time.sleep(0.05)
        yield pcap
    finally:
        time.sleep(0.5)  # let the last packets land
        process.terminate()
        process.wait(10)


def canary_copies(pcap: Path) -> int:
    """Copies of the guest's canary in the capture (segments may split a few: a lower bound,
    never a false positive)."""
    return pcap.read_bytes().count(CANARY)


class FlippingRelay:
    """Listens on the bridge's address on QEMU's migration ports and forwards each connection
    to the same port of ``destination``, flipping one bit of the byte at offset ``flip_at`` of
    the first client→server stream."""

    def __init__(self, listen: str, destination: str, flip_at: int = 1_000_000) -> None:
        self.listen = listen
        self.destination = destination
        self.flip_at = flip_at
        self.connections = 0
        self.flipped = False
        self._seen = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[asyncio.Server] = []

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, flip: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if flip and not self.flipped and self._seen + len(data) > self.flip_at:
                    buffer = bytearray(data)
                    buffer[self.flip_at - self._seen] ^= 0x01
                    data, self.flipped = bytes(buffer), True
                if flip:
                    self._seen += len(data)
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        port = writer.get_extra_info("sockname")[1]
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(self.destination, port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._pipe(reader, up_writer, self.connections == 1),
            self._pipe(up_reader, writer, False),
        )

    async def _start(self) -> None:
        for port in range(MIGRATION_PORTS[0], MIGRATION_PORTS[0] + 12):
            self._servers.append(await asyncio.start_server(self._handle, self.listen, port))

    async def _stop(self) -> None:
        for server in self._servers:
            server.close()

    def __enter__(self) -> FlippingRelay:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@contextlib.contextmanager
def detour(source: TestbedHost, destination: TestbedHost, via: str) -> Iterator[None]:
    """Send ``source``'s connections to ``destination``'s migration ports to ``via`` instead
    (DNAT in the source's namespace; the destination port is kept)."""
    low, high = MIGRATION_PORTS
    rule = ["-p", "tcp", "-d", destination.address, "--dport", f"{low}:{high}",
            "-j", "DNAT", "--to-destination", via]  # fmt: skip
    base = ["ip", "netns", "exec", source.netns, "iptables", "-t", "nat"]
    subprocess.run([*base, "-A", "OUTPUT", *rule], check=True, timeout=30)
    try:
        yield
    finally:
        subprocess.run([*base, "-D", "OUTPUT", *rule], check=False, timeout=30)
