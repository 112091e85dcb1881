"""Decoding speed of corral.rfb against recorded QEMU VNC sessions, and against vncdotool.

Records ~10 s per encoding from QEMU's VNC server at its default settings, watching a guest
whose VGA text console scrolls constantly (``corral.scroll=1``), into build/rfb-recordings/
(kept: later runs reuse them; ``--record`` re-records). Then decodes each recording into a
framebuffer and prints MB/s, updates/s and the factor over real time; raw, hextile and ZRLE are
also decoded by vncdotool's ``VNCDoToolClient`` updating its PIL screen (it cannot decode zlib,
tight or tightpng). Each side decodes each recording ``--repeat`` times with a fresh client and
the median time counts (the machine is shared; one-time warm-up such as numpy's first calls is
not decoding). ``--json`` prints ``speedup_raw``, ``speedup_hextile``, ``speedup_zrle`` and
``min_realtime_factor``.

    .venv/bin/python bench/rfb_decode.py [--json] [--record] [--seconds 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

from _report import report  # noqa: E402

from corral.rfb import (  # noqa: E402
    NEED_DATA,
    Connected,
    Encoding,
    FramebufferUpdated,
    FramebufferUpdateRequest,
    RFBConnection,
)

ENCODINGS = {
    "raw": Encoding.RAW,
    "hextile": Encoding.HEXTILE,
    "zlib": Encoding.ZLIB,
    "zrle": Encoding.ZRLE,
    "tight": Encoding.TIGHT,
    "tightpng": Encoding.TIGHT_PNG,
}
VNCDOTOOL = ("raw", "hextile", "zrle")
_CHUNK = struct.Struct(">dI")


@dataclass
class Recording:
    encoding: str
    duration: float
    chunks: list[bytes]

    @property
    def size(self) -> int:
        return sum(len(c) for c in self.chunks)

    def save(self, path: Path) -> None:
        header = {"encoding": self.encoding, "duration": self.duration, "chunks": len(self.chunks)}
        with path.open("wb") as f:
            f.write(json.dumps(header).encode() + b"\n")
            for chunk in self.chunks:
                f.write(_CHUNK.pack(0.0, len(chunk)) + chunk)

    @classmethod
    def load(cls, path: Path) -> Recording:
        data = path.read_bytes()
        line, _, rest = data.partition(b"\n")
        header = json.loads(line)
        chunks, pos = [], 0
        for _ in range(header["chunks"]):
            _, n = _CHUNK.unpack_from(rest, pos)
            chunks.append(rest[pos + _CHUNK.size : pos + _CHUNK.size + n])
            pos += _CHUNK.size + n
        return cls(header["encoding"], header["duration"], chunks)


# --- recording --------------------------------------------------------------------------------
def _start_guest(workdir: Path) -> subprocess.Popen[bytes]:
    from corral.testbed.guest_images import build_kernel_guest

    guest = build_kernel_guest(REPO / "build" / "guests")
    argv = [
        "qemu-system-x86_64", "-accel", "tcg", "-display", "none", "-m", "256",
        "-kernel", str(guest.kernel), "-initrd", str(guest.initrd),
        "-append", guest.cmdline + " corral.scroll=1",
        "-vnc", f"unix:{workdir / 'vnc.sock'}", "-serial", f"file:{workdir / 'serial.log'}",
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    log = workdir / "serial.log"
    while b"corral-heartbeat 2" not in (log.read_bytes() if log.exists() else b""):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the scrolling guest did not boot")
        time.sleep(0.1)
    return proc


async def _record(socket: Path, name: str, seconds: float) -> Recording:
    """Watch the screen like a viewer: full request, then an incremental one after each update."""
    conn = RFBConnection(encodings=(ENCODINGS[name],))
    reader, writer = await asyncio.open_unix_connection(str(socket))
    chunks: list[bytes] = []
    start = 0.0
    try:
        while not start or time.monotonic() - start < seconds:
            data = await asyncio.wait_for(reader.read(1 << 18), 10)
            if not data:
                raise RuntimeError("QEMU closed the VNC connection")
            chunks.append(data)
            conn.receive_data(data)
            while (event := conn.next_event()) is not NEED_DATA:
                fb = conn.framebuffer
                if isinstance(event, Connected):
                    start = time.monotonic()
                    writer.write(conn.data_to_send())
                    writer.write(
                        conn.send(FramebufferUpdateRequest(0, 0, fb.width, fb.height, False))
                    )
                elif isinstance(event, FramebufferUpdated):
                    writer.write(conn.send(FramebufferUpdateRequest(0, 0, fb.width, fb.height)))
            writer.write(conn.data_to_send())
    finally:
        writer.close()
    return Recording(name, time.monotonic() - start, chunks)


def _recordings(directory: Path, seconds: float, force: bool) -> dict[str, Recording]:
    directory.mkdir(parents=True, exist_ok=True)
    missing = [n for n in ENCODINGS if force or not (directory / f"{n}.rec").exists()]
    if missing:
        with tempfile.TemporaryDirectory() as tmp:
            proc = _start_guest(Path(tmp))
            try:
                for name in missing:
                    rec = asyncio.run(_record(Path(tmp) / "vnc.sock", name, seconds))
                    rec.save(directory / f"{name}.rec")
            finally:
                proc.terminate()
                proc.wait(10)
    return {n: Recording.load(directory / f"{n}.rec") for n in ENCODINGS}


# --- decoding ---------------------------------------------------------------------------------
def decode_corral(rec: Recording) -> tuple[float, int]:
    """Seconds to decode the recording into corral.rfb's framebuffer, and updates seen."""
    conn = RFBConnection(encodings=(ENCODINGS[rec.encoding],))
    updates = 0
    t0 = time.perf_counter()
    for chunk in rec.chunks:
        conn.receive_data(chunk)
        while (event := conn.next_event()) is not NEED_DATA:
            if isinstance(event, FramebufferUpdated):
                updates += 1
    return time.perf_counter() - t0, updates


class _Transport:
    """Enough of a Twisted transport for vncdotool to write its replies into."""

    def write(self, data: bytes) -> None:
        pass

    def writeSequence(self, data: list[bytes]) -> None:
        pass

    def loseConnection(self) -> None:
        raise RuntimeError("vncdotool gave up on the recording")

    def getPeer(self) -> object:
        return None


def decode_vncdotool(rec: Recording) -> float:
    """Seconds for vncdotool's VNCDoToolClient to take the recording into its PIL screen."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from vncdotool import client as vclient
        from vncdotool import rfb as vrfb

    encoding = {"raw": vrfb.Encoding.RAW, "hextile": vrfb.Encoding.HEXTILE,
                "zrle": vrfb.Encoding.ZRLE}[rec.encoding]  # fmt: skip
    factory = vclient.VNCDoToolFactory()
    factory.deferred.addErrback(lambda failure: None)
    proto = vclient.VNCDoToolClient()
    proto.factory = factory
    proto.encoding = encoding
    proto.makeConnection(_Transport())
    # Our recorder asked for RGBX; announce that format in ServerInit so vncdotool decodes the
    # colours right (it would otherwise keep QEMU's BGRX): same work either way.
    qemu_bgrx = bytes([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0])
    rgbx = bytes([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 0, 8, 16])
    chunks = list(rec.chunks)
    chunks[0] = chunks[0].replace(qemu_bgrx, rgbx, 1)
    t0 = time.perf_counter()
    for chunk in chunks:
        proto.dataReceived(chunk)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--record", action="store_true", help="record the sessions again")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each recording")
    parser.add_argument("--repeat", type=int, default=3, help="decodes per side; median counts")
    parser.add_argument("--dir", type=Path, default=REPO / "build" / "rfb-recordings")
    args = parser.parse_args()
    recordings = _recordings(args.dir, args.seconds, args.record)
    rows: list[dict[str, object]] = []
    headline: dict[str, float] = {}
    factors = []
    for name, rec in recordings.items():
        runs = [decode_corral(rec) for _ in range(args.repeat)]
        seconds, updates = statistics.median([r[0] for r in runs]), runs[0][1]
        mb = rec.size / 1e6
        row: dict[str, object] = {
            "encoding": name, "MB": mb, "updates": updates, "MB/s": mb / seconds,
            "updates/s": updates / seconds, "x real time": rec.duration / seconds,
            "vncdotool MB/s": "-", "speed-up": "-",
        }  # fmt: skip
        factors.append(rec.duration / seconds)
        if name in VNCDOTOOL:
            theirs = statistics.median([decode_vncdotool(rec) for _ in range(args.repeat)])
            row["vncdotool MB/s"] = mb / theirs
            row["speed-up"] = theirs / seconds
            headline[f"speedup_{name}"] = theirs / seconds
        rows.append(row)
    headline["min_realtime_factor"] = min(factors)
    report("corral.rfb decoding of recorded QEMU sessions", rows, headline, args.json)


if __name__ == "__main__":
    main()
