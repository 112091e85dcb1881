"""The console proxy (noVNC → Corral → QEMU's VNC): frame rate, transport ceiling, added latency.

One run, three measurements, all on this machine (loopback TCP and UNIX sockets):

(a) QEMU's own update stream. A private libvirtd and a real ``corral serve`` (uvicorn with
    uvloop, as ``make run`` serves) run the busybox kernel guest under TCG with ``corral.scroll=1``
    (its VGA text console scrolls constantly). The same viewer loop watches it both ways, with
    ``corral.rfb.RFBConnection`` decoding every update: a full update request at ServerInit, then
    an incremental one after each update, counted for ``--seconds`` from ServerInit. Encodings:
    noVNC 1.7's preference order (CopyRect, Tight, TightPNG, ZRLE, Hextile, RRE, Zlib, Raw, JPEG
    quality 6, compression 2, then the pseudo-encodings) less what corral.rfb does not decode
    (H.264, the JPEG encoding 21, XVP, Fence, ContinuousUpdates, DesktopName, VMware cursor,
    extended mouse buttons); QEMU answers in Tight. *direct*: QEMU's VNC UNIX socket (the domain
    XML's ``<graphics><listen type='socket'>``, seen from outside libvirt's mount namespace).
    *proxy*: a console ticket from the API (admin token), then the real route
    ``/api/v1/vms/NAME/vnc?ticket=…`` (ticket and rights checks, libvirt's ``openGraphicsFD``, the
    relay's own handshake, then the relay), read with the ``websockets`` asyncio client. Runs
    alternate; ``qemu_stream_vs_direct`` = median proxy updates/s ÷ median direct updates/s
    (target ≥ 0.95: QEMU, which sends at most one update per 30 ms refresh, is the bottleneck).

(b) The transport ceiling. ``--record-seconds`` of that stream, recorded over the direct socket
    and cut after ServerInit, is replayed by a small RFB 3.8 server (security None, the
    recording's ServerInit; asyncio on uvloop in its own process, 127.0.0.1) which, at the
    viewer's first update request, writes the recording over and over, as fast as the socket
    takes it, up to ``--replay-mb``. The client reads it all, counting bytes and decoding nothing,
    over *direct TCP*, through *websockify* (PyPI, its command line in front of the replay server,
    one process per connection as it forks) and through *Corral's relay*:
    ``corral.api.console_relay.relay``, the code the real route runs, in a one-route FastAPI app
    served by uvicorn with ``corral serve``'s server options (``UVICORN_OPTIONS``) in its own
    process, its upstream opened with ``corral.rfb.open_upstream_tcp`` to the replay server.
    Left out are the route's ticket and rights checks (once per connection, nothing per byte;
    the real route only opens libvirt VMs). The client is the same for both WebSocket paths and
    kept light so that it does not set the pace: blocking sockets, an RFC 6455 client written
    here (upgrade with subprotocol ``binary``, no compression, masked frames out, frame headers
    parsed in place and payloads counted, never assembled); its CPU share per run is shown.
    ``ceiling_vs_websockify`` = median Corral MB/s ÷ median websockify MB/s (target ≥ 1.0).

(c) Added round trip. The same replay server answers each KeyEvent with a Bell (1 byte); the
    client sends a KeyEvent and waits for its Bell, ``--rtt-count`` times after 200 uncounted,
    over the three paths of (b) (the relay frames the KeyEvent with ``ClientMessageReader`` and
    forwards it at once). ``added_rtt_ms_p50`` = Corral's p50 - direct TCP's p50, each the median
    of its runs' p50 (target ≤ 0.3 ms); websockify's added p50 is printed beside it.

The guest is gone before (b) and (c), which would otherwise compete for the two cores. Every
comparison alternates its paths run by run (``--runs`` in (a), ``--transport-runs`` in (b) and
(c) after one uncounted round) and reports medians; the machine is shared, so single runs vary.

    .venv/bin/python bench/console_proxy.py [--json] [--runs 3] [--seconds 8]
        [--transport-runs 9] [--replay-mb 200] [--rtt-count 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import math
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))
# corral serve and the helper processes run this checkout's code too.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p
)

import uvloop  # noqa: E402
from _report import report  # noqa: E402
from fastapi import WebSocket  # noqa: E402  (module level: FastAPI resolves the annotation)
from websockets.asyncio.client import ClientConnection  # noqa: E402
from websockets.asyncio.client import connect as ws_connect  # noqa: E402

from corral.rfb import (  # noqa: E402
    NEED_DATA,
    Connected,
    Encoding,
    FramebufferUpdated,
    FramebufferUpdateRequest,
    RFBConnection,
)

#: noVNC 1.7's ``_sendEncodings`` order at depth 24, less what corral.rfb does not decode.
NOVNC_ENCODINGS: tuple[int, ...] = (
    Encoding.COPY_RECT,
    Encoding.TIGHT,
    Encoding.TIGHT_PNG,
    Encoding.ZRLE,
    Encoding.HEXTILE,
    Encoding.RRE,
    Encoding.ZLIB,
    Encoding.RAW,
    Encoding.JPEG_QUALITY_0 + 6,
    Encoding.COMPRESS_LEVEL_0 + 2,
    Encoding.DESKTOP_SIZE,
    Encoding.LAST_RECT,
    Encoding.QEMU_EXTENDED_KEY_EVENT,
    Encoding.QEMU_LED_STATE,
    Encoding.EXTENDED_DESKTOP_SIZE,
    Encoding.EXTENDED_CLIPBOARD,
    Encoding.CURSOR,
)
VM = "bench-console"
PATHS = ("direct TCP", "websockify", "Corral relay")  # (b) and (c)
READ = 1 << 18
WS_OPTIONS: dict[str, Any] = {"compression": None, "max_size": 64 << 20}
KEY_EVENT = struct.pack(">BBxxI", 4, 1, 0x61)  # 'a' pressed
UPDATE_REQUEST = struct.pack(">BBHHHH", 3, 0, 0, 0, 1, 1)  # full, whatever the size
BELL = b"\x02"
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
RTT_WARMUP = 200


# --- (a) viewer links: the same viewer loop over QEMU's socket or Corral's WebSocket ---------
class Link:
    """A byte pipe to an RFB server: ``recv`` returns what arrived (b"" at the end)."""

    async def recv(self) -> bytes:
        raise NotImplementedError

    async def send(self, data: bytes) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class StreamLink(Link):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def unix(cls, path: Path) -> StreamLink:
        return cls(*await asyncio.open_unix_connection(str(path), limit=1 << 20))

    async def recv(self) -> bytes:
        return await self.reader.read(READ)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


class WebSocketLink(Link):
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, url: str, headers: dict[str, str] | None = None) -> WebSocketLink:
        ws = await ws_connect(
            url, additional_headers=headers, subprotocols=["binary"], **WS_OPTIONS
        )
        return cls(ws)

    async def recv(self) -> bytes:
        from websockets.exceptions import ConnectionClosedOK

        try:
            data = await self.ws.recv(decode=False)
        except ConnectionClosedOK:
            return b""
        assert isinstance(data, bytes)
        return data

    async def send(self, data: bytes) -> None:
        await self.ws.send(data)

    async def close(self) -> None:
        await self.ws.close()


# --- (a) QEMU's stream: direct and through the real route -------------------------------------
@dataclass
class Watch:
    seconds: float
    updates: int = 0
    nbytes: int = 0
    chunks: list[bytes] = field(default_factory=list)

    @property
    def updates_per_s(self) -> float:
        return self.updates / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.nbytes / self.seconds / 1e6


async def watch(link: Link, seconds: float, keep: bool = False) -> Watch:
    """noVNC's loop: a full request at ServerInit, an incremental one after each update; counts
    updates decoded and bytes received in ``seconds`` from ServerInit."""
    conn = RFBConnection(encodings=NOVNC_ENCODINGS)
    result = Watch(seconds)
    deadline = math.inf
    try:
        while (left := deadline - time.monotonic()) > 0:
            try:
                data = await asyncio.wait_for(link.recv(), min(left, 10))
            except TimeoutError:
                if left > 10:
                    raise RuntimeError("the VNC server sent nothing for 10 s") from None
                break  # the window closed
            if not data:
                raise RuntimeError("the VNC server closed the connection")
            if keep:
                result.chunks.append(data)
            conn.receive_data(data)
            if deadline is not math.inf:
                result.nbytes += len(data)
            out = []
            while (event := conn.next_event()) is not NEED_DATA:
                fb = conn.framebuffer
                out.append(conn.data_to_send())  # handshake replies, pixel format, encodings
                if isinstance(event, Connected):
                    deadline = time.monotonic() + seconds
                    out.append(
                        conn.send(FramebufferUpdateRequest(0, 0, fb.width, fb.height, False))
                    )
                elif isinstance(event, FramebufferUpdated):
                    if time.monotonic() < deadline:
                        result.updates += 1
                    out.append(conn.send(FramebufferUpdateRequest(0, 0, fb.width, fb.height)))
            out.append(conn.data_to_send())
            if data := b"".join(out):
                await link.send(data)
    finally:
        await link.close()
    return result


def vnc_socket(daemon: Any, name: str) -> Path:
    import libvirt

    conn = libvirt.open(daemon.uri)
    try:
        xml = ElementTree.fromstring(conn.lookupByName(name).XMLDesc())
    finally:
        conn.close()
    listen = xml.find("./devices/graphics[@type='vnc']/listen[@type='socket']")
    if listen is None or not listen.get("socket"):
        raise RuntimeError(f"VM {name} has no VNC UNIX socket in its domain XML")
    path: Path = daemon.host_path(listen.get("socket", ""))
    return path


def split_recording(chunks: list[bytes]) -> tuple[bytes, bytes]:
    """(ServerInit, the server's bytes after it) from a recorded session."""
    conn = RFBConnection(encodings=NOVNC_ENCODINGS)
    for i, chunk in enumerate(chunks):
        conn.receive_data(chunk)
        while (event := conn.next_event()) is not NEED_DATA:
            if isinstance(event, Connected):
                return event.server_init_bytes(), conn.take_unparsed() + b"".join(chunks[i + 1 :])
    raise RuntimeError("the recording has no ServerInit")


def measure_qemu(args: argparse.Namespace, tmp: Path) -> tuple[list[Watch], list[Watch], bytes]:
    """(a): direct and proxy watches, alternating; returns them and a recording for (b)."""
    from corral.testbed.corral_server import CorralServer
    from corral.testbed.guest_images import build_kernel_guest
    from corral.testbed.private_libvirtd import PrivateLibvirtd
    from corral.testbed.vm_specs import kernel_vm

    guest = build_kernel_guest(REPO / "build" / "guests")
    with (
        PrivateLibvirtd(tmp / "libvirtd") as daemon,
        CorralServer(tmp / "corral", daemon.uri, host_path_roots=[guest.kernel.parent]) as server,
        server.client() as api,
    ):
        spec = kernel_vm(VM, guest, disk_gib=None, start=True)
        spec["boot"]["cmdline"] += " corral.scroll=1"
        api.post("/vms", json=spec).raise_for_status()
        deadline = time.monotonic() + 120
        while b"corral-heartbeat 2" not in api.get(f"/vms/{VM}/log").content:
            if time.monotonic() > deadline:
                raise RuntimeError("the scrolling guest did not boot within 120 s")
            time.sleep(0.2)
        sock = vnc_socket(daemon, VM)
        ws_base = server.url.replace("http", "ws", 1)
        headers = {"Authorization": f"Bearer {server.token}"}

        async def proxy_link() -> Link:
            answer = api.post(f"/vms/{VM}/console/ticket", json={"kind": "vnc"})
            answer.raise_for_status()
            return await WebSocketLink.open(ws_base + answer.json()["url"], headers)

        async def run() -> tuple[list[Watch], list[Watch], bytes]:
            rec = await watch(await StreamLink.unix(sock), args.record_seconds, keep=True)
            recording = b"".join(rec.chunks)
            direct, proxy = [], []
            for i in range(args.runs):
                order = [("direct", direct), ("proxy", proxy)]
                for kind, runs in order if i % 2 == 0 else order[::-1]:
                    link = await (StreamLink.unix(sock) if kind == "direct" else proxy_link())
                    runs.append(await watch(link, args.seconds))
            return direct, proxy, recording

        return uvloop.run(run())  # leaving the block destroys the guest, stops both daemons


# --- (b) and (c): replay server, websockify, Corral's relay in its own process ----------------
def serve_replay(recording: Path) -> None:
    """RFB 3.8 security None with the recording's ServerInit; then per connection: a
    FramebufferUpdateRequest starts the replay (``repeat`` times the stream), each KeyEvent is
    answered with a Bell. Prints its port."""
    data = recording.read_bytes()
    (init_len,) = struct.unpack_from(">I", data)
    server_init, stream = data[4 : 4 + init_len], data[4 + init_len :]
    repeat = int(os.environ["REPLAY_REPEAT"])
    sizes = {0: 19, 3: 9, 4: 7, 5: 5}  # the rest of fixed-size client messages

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            writer.write(b"RFB 003.008\n")
            await reader.readexactly(12)
            writer.write(b"\x01\x01")
            await reader.readexactly(1)
            writer.write(b"\0\0\0\0")
            await reader.readexactly(1)
            writer.write(server_init)
            replayed = False
            while kind := await reader.read(1):
                if kind[0] == 2:  # SetEncodings
                    (count,) = struct.unpack(">xH", await reader.readexactly(3))
                    await reader.readexactly(4 * count)
                    continue
                await reader.readexactly(sizes[kind[0]])
                if kind[0] == 4:
                    writer.write(BELL)
                elif kind[0] == 3 and not replayed:
                    replayed = True
                    for _ in range(repeat):
                        writer.write(stream)
                        await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, limit=1 << 20)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    uvloop.run(main())


def serve_relay(port: int, upstream_port: int) -> None:
    """Corral's relay in a one-route FastAPI app, under uvicorn as ``corral serve`` runs it."""
    import uvicorn
    from fastapi import FastAPI

    from corral.api.console_relay import relay
    from corral.cli.serve import UVICORN_OPTIONS
    from corral.rfb import open_upstream_tcp

    app = FastAPI()

    async def forever() -> str:
        await asyncio.Event().wait()
        return "never"

    @app.websocket("/relay")
    async def relay_route(ws: WebSocket) -> None:
        await ws.accept(subprotocol="binary" if "binary" in ws.scope["subprotocols"] else None)
        await relay(
            ws,
            lambda: open_upstream_tcp("127.0.0.1", upstream_port),
            view_only=False,
            rights_end=forever,
        )

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", **UVICORN_OPTIONS)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within 30 s")


@contextlib.contextmanager
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Every helper process, each in its own session; all of each group ends on exit."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        yield procs
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


# --- (b) and (c) clients: blocking sockets, as little work per byte as possible ---------------
class Pipe:
    """A client's byte stream to an RFB server over a blocking socket. ``count()`` reads what
    arrived and returns how many stream bytes it held without keeping them; ``recv()`` returns
    them (b"" at the end)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray(1 << 20)
        self.view = memoryview(self.buf)
        self.pending = bytearray()  # bytes read ahead (the handshake's readexactly)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self) -> bytes:
        n = self.sock.recv_into(self.buf)
        return bytes(self.view[:n])

    def count(self) -> int:
        n: int = self.sock.recv_into(self.buf)
        if not n:
            raise ConnectionError("the server closed the connection")
        return n

    def close(self) -> None:
        self.sock.close()

    def readexactly(self, n: int) -> bytes:
        while len(self.pending) < n:
            data = self.recv()
            if not data:
                raise ConnectionError("the server closed the connection")
            self.pending += data
        out = bytes(self.pending[:n])
        del self.pending[:n]
        return out

    def handshake(self) -> None:
        """RFB 3.8, security None, shared: the replay server's, passed through by websockify,
        or played by Corral's relay."""
        if not self.readexactly(12).startswith(b"RFB 003.00"):
            raise RuntimeError("not an RFB server")
        self.send(b"RFB 003.008\n")
        if 1 not in self.readexactly(self.readexactly(1)[0]):
            raise RuntimeError("security None not offered")
        self.send(b"\x01")
        if self.readexactly(4) != b"\0\0\0\0":
            raise RuntimeError("security failed")
        self.send(b"\x01")
        head = self.readexactly(24)
        self.readexactly(struct.unpack(">I", head[20:24])[0])


class WebSocketPipe(Pipe):
    """RFC 6455 client, the same for websockify and Corral: the upgrade (subprotocol
    ``binary``, no extensions), masked binary frames out; frames in are parsed in place, their
    payload counted (or returned), never assembled into messages. Pings are answered."""

    def __init__(self, port: int, path: str) -> None:
        super().__init__(port)
        key = base64.b64encode(os.urandom(16))
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: binary\r\n".encode()
            + b"Sec-WebSocket-Key: " + key + b"\r\n\r\n"
        )  # fmt: skip
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = self.sock.recv(4096)
            if not data:
                raise ConnectionError("the WebSocket upgrade was refused")
            answer += data
        head, _, rest = answer.partition(b"\r\n\r\n")
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
        if not head.startswith(b"HTTP/1.1 101") or accept not in head:
            raise ConnectionError(f"the WebSocket upgrade failed: {head[:200]!r}")
        self.left = 0  # payload bytes of the current frame still to come
        self.frame = 0  # its opcode (0: continuation, 1 or 2: data, 8 and up: control)
        self.head = bytearray()  # a frame header split across reads
        self.control = bytearray()  # a control frame's payload
        self.closed = False
        self.payload = 0
        self.pieces: list[bytes] | None = []
        self._parse(memoryview(rest))
        self.pending += b"".join(self.pieces)
        self.pieces = None

    def send(self, data: bytes) -> None:
        self._send_frame(0x2, data)

    def _send_frame(self, opcode: int, data: bytes) -> None:
        assert len(data) < 126
        mask = os.urandom(4)
        key = int.from_bytes((mask * (len(data) // 4 + 1))[: len(data)], "big")
        masked = (int.from_bytes(data, "big") ^ key).to_bytes(len(data), "big")
        self.sock.sendall(bytes((0x80 | opcode, 0x80 | len(data))) + mask + masked)

    def recv(self) -> bytes:
        self.pieces = []
        while not self.pieces and not self.closed:
            n = self.sock.recv_into(self.buf)
            if not n:
                break
            self._parse(self.view[:n])
        data = b"".join(self.pieces)
        self.pieces = None
        return data

    def count(self) -> int:
        self.payload = 0
        while not self.payload:
            n = self.sock.recv_into(self.buf)
            if not n or self.closed:
                raise ConnectionError("the server closed the connection")
            self._parse(self.view[:n])
        return self.payload

    def _parse(self, data: memoryview) -> None:
        pos, end = 0, len(data)
        while pos < end:
            if self.left:
                take = min(self.left, end - pos)
                if self.frame >= 0x8:
                    self.control += data[pos : pos + take]
                elif self.pieces is not None:
                    self.pieces.append(bytes(data[pos : pos + take]))
                else:
                    self.payload += take
                self.left -= take
                pos += take
                if not self.left:
                    self._frame_done()
                continue
            if self.head:  # a header split across reads: at most 14 bytes to join
                joined = bytes(self.head) + bytes(data[pos : pos + 14])
                header = _frame_header(joined)
                if header is None:
                    self.head[:] = joined
                    return
                pos += header[0] - len(self.head)
                self.head.clear()
            else:
                header = _frame_header(data[pos : pos + 14])
                if header is None:
                    self.head += data[pos:end]
                    return
                pos += header[0]
            _, self.frame, self.left = header
            if not self.left:
                self._frame_done()

    def _frame_done(self) -> None:
        if self.frame == 0x8:
            self.closed = True
        elif self.frame == 0x9:
            self._send_frame(0xA, bytes(self.control))
        self.control.clear()


def _frame_header(head: bytes | memoryview) -> tuple[int, int, int] | None:
    """(header length, opcode, payload length) of a server frame, None if incomplete."""
    if len(head) < 2:
        return None
    if head[1] & 0x80:
        raise ConnectionError("the server masked a frame")
    size = head[1] & 0x7F
    extra = {126: 2, 127: 8}.get(size, 0)
    if len(head) < 2 + extra:
        return None
    if extra:
        size = int.from_bytes(head[2 : 2 + extra], "big")
    return 2 + extra, head[0] & 0x0F, size


def open_pipe(path: str, ports: dict[str, int]) -> Pipe:
    if path == "direct TCP":
        return Pipe(ports[path])
    return WebSocketPipe(ports[path], "/" if path == "websockify" else "/relay")


def read_all(pipe: Pipe, total: int) -> tuple[float, float]:
    """(b): seconds from the update request to the last of ``total`` replayed bytes, and the
    client's share of a CPU meanwhile (near 1 would mean the client limits the figure)."""
    pipe.handshake()
    got = len(pipe.pending)
    started, cpu = time.perf_counter(), time.process_time()
    pipe.send(UPDATE_REQUEST)
    count = pipe.count
    while got < total:
        got += count()
    elapsed = time.perf_counter() - started
    share = (time.process_time() - cpu) / elapsed
    pipe.close()
    return elapsed, share


def round_trips(pipe: Pipe, n: int) -> list[float]:
    """(c): milliseconds from sending a KeyEvent to its Bell, ``n`` times after a warm-up."""
    pipe.handshake()
    send, recv, clock = pipe.send, pipe.recv, time.perf_counter
    times = []
    for i in range(RTT_WARMUP + n):
        started = clock()
        send(KEY_EVENT)
        if recv() != BELL:
            raise RuntimeError("expected exactly one Bell per KeyEvent")
        if i >= RTT_WARMUP:
            times.append((clock() - started) * 1e3)
    pipe.close()
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Transport:
    """(b) and (c) per path: MB/s and the client's CPU share per run, round trips per run."""

    mb_s: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PATHS})
    client_cpu: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PATHS})
    rtt_ms: dict[str, list[list[float]]] = field(default_factory=lambda: {p: [] for p in PATHS})
    total: int = 0


def measure_transport(args: argparse.Namespace, tmp: Path, recording: bytes) -> Transport:
    server_init, stream = split_recording([recording])
    if not stream:
        raise RuntimeError("the recording has no update after ServerInit")
    repeat = max(1, math.ceil(args.replay_mb * 1e6 / len(stream)))
    result = Transport(total=repeat * len(stream))
    rec_file = tmp / "replay.rec"
    rec_file.write_bytes(struct.pack(">I", len(server_init)) + server_init + stream)
    me = [sys.executable, str(Path(__file__).resolve())]
    env = {**os.environ, "REPLAY_REPEAT": str(repeat)}
    quiet: dict[str, Any] = {"env": env, "stderr": subprocess.DEVNULL, "start_new_session": True}
    with processes() as procs:
        procs.append(subprocess.Popen([*me, "--serve-replay", str(rec_file)],
                                      stdout=subprocess.PIPE, **quiet))  # fmt: skip
        assert procs[0].stdout is not None
        replay = int(procs[0].stdout.readline())
        ports = {"direct TCP": replay, "websockify": free_port(), "Corral relay": free_port()}
        helpers = {
            "websockify": [sys.executable, "-m", "websockify",
                           f"127.0.0.1:{ports['websockify']}", f"127.0.0.1:{replay}"],
            "Corral relay": [*me, "--serve-relay", str(ports["Corral relay"]), str(replay)],
        }  # fmt: skip
        for what, argv in helpers.items():
            procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, **quiet))
            wait_listening(ports[what], procs[-1], what)
        for i in range(args.transport_runs + 1):  # the first round warms up, uncounted
            order = PATHS[i % 3 :] + PATHS[: i % 3]
            for path in order:
                seconds, cpu = read_all(open_pipe(path, ports), result.total)
                if i:
                    result.mb_s[path].append(result.total / seconds / 1e6)
                    result.client_cpu[path].append(cpu)
            for path in order:
                times = round_trips(open_pipe(path, ports), args.rtt_count)
                if i:
                    result.rtt_ms[path].append(times)
    return result


# --- report -----------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--runs", type=int, default=3, help="(a) runs per path; medians count")
    parser.add_argument("--transport-runs", type=int, default=9, help="(b), (c) runs per path")
    parser.add_argument("--seconds", type=float, default=8.0, help="(a) window per run")
    parser.add_argument("--record-seconds", type=float, default=5.0, help="(b) recording")
    parser.add_argument("--replay-mb", type=float, default=200.0, help="(b) bytes per run")
    parser.add_argument("--rtt-count", type=int, default=2000, help="(c) round trips per run")
    parser.add_argument("--serve-replay", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--serve-relay", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_replay:
        serve_replay(args.serve_replay)
        return
    if args.serve_relay:
        serve_relay(*args.serve_relay)
        return

    with tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        direct, proxy, recording = measure_qemu(args, tmp)
        transport = measure_transport(args, tmp, recording)
    report(
        "console proxy: QEMU's stream, transport ceiling, added round trip",
        *summarise(direct, proxy, transport),
        json_mode=args.json,
    )


def summarise(
    direct: list[Watch], proxy: list[Watch], t: Transport
) -> tuple[list[dict[str, object]], dict[str, float]]:
    med = statistics.median

    def spread(values: list[float], fmt: str) -> str:
        return f"{fmt.format(min(values))}-{fmt.format(max(values))}"

    rows: list[dict[str, object]] = []
    ups = {"direct": med(w.updates_per_s for w in direct),
           "proxy": med(w.updates_per_s for w in proxy)}  # fmt: skip
    for kind, path, watches in (("direct", "QEMU socket", direct),
                                ("proxy", "corral serve", proxy)):  # fmt: skip
        rows.append({
            "measure": "(a) updates/s", "path": path, "median": ups[kind],
            "runs": spread([w.updates_per_s for w in watches], "{:.1f}"),
            "vs direct": ups[kind] / ups["direct"], "vs websockify": "-",
            "note": f"{med(w.mb_per_s for w in watches) * 1e3:.3g} kB/s",
        })  # fmt: skip
    mb = {p: med(t.mb_s[p]) for p in PATHS}
    for path in PATHS:
        rows.append({
            "measure": "(b) MB/s", "path": path, "median": mb[path],
            "runs": spread(t.mb_s[path], "{:.0f}"),
            "vs direct": mb[path] / mb["direct TCP"],
            "vs websockify": "-" if path == "direct TCP" else mb[path] / mb["websockify"],
            "note": f"client CPU {med(t.client_cpu[path]):.0%}",
        })  # fmt: skip
    p50s = {p: [percentile(r, 0.5) for r in t.rtt_ms[p]] for p in PATHS}
    p50 = {p: med(p50s[p]) for p in PATHS}
    p99 = {p: med(percentile(r, 0.99) for r in t.rtt_ms[p]) for p in PATHS}
    for path in PATHS:
        rows.append({
            "measure": "(c) RTT p50 ms", "path": path, "median": p50[path],
            "runs": spread(p50s[path], "{:.3f}"),
            "vs direct": f"{p50[path] - p50['direct TCP']:+.3f}",
            "vs websockify": "-" if path == "direct TCP"
            else f"{p50[path] - p50['websockify']:+.3f}",
            "note": f"p99 {p99[path]:.3f}",
        })  # fmt: skip
    headline = {
        "qemu_stream_vs_direct": ups["proxy"] / ups["direct"],
        "ceiling_vs_websockify": mb["Corral relay"] / mb["websockify"],
        "added_rtt_ms_p50": p50["Corral relay"] - p50["direct TCP"],
        "websockify_added_rtt_ms_p50": p50["websockify"] - p50["direct TCP"],
        "websockify_vs_direct_tcp": mb["websockify"] / mb["direct TCP"],
        "corral_vs_direct_tcp": mb["Corral relay"] / mb["direct TCP"],
    }
    return rows, headline


if __name__ == "__main__":
    main()
