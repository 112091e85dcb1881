"""``ha.beat``: the host's storage heartbeat and its self-fence.

A detached beater (its own session, process name ``corral-hbeat``) writes
``DIR/.corral-ha/HOST.beat`` every ``interval_s`` (JSON: host, sequence, time; written to a
temporary file, fsynced, renamed) on a shared storage domain every host mounts. The writes
run in a thread; the main loop watches them: when none has succeeded for ``fence_after_s`` —
the host lost its storage, or the storage hangs — it kills every QEMU process on the host
(SIGKILL), so that once its heartbeat is older than that the manager may restart its VMs
elsewhere without two copies ever writing one disk. This stands in for a hardware watchdog
(the test machine has none): on real hosts, arm one as well.

``ha.beat`` starts the beater, or gives a running one its new settings (it rereads them every
beat); ``ha.beats`` reads every host's last heartbeat in a directory (any host can tell the
manager how the others' move).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .netstore import STATE_DIR
from .protocol import AgentError

CONFIG = "ha-beat.json"
PID = "ha-beat.pid"
LOG = "ha-beat.log"
PROCESS_NAME = b"corral-hbeat"
BEAT_DIR = ".corral-ha"


def _config(args: dict[str, Any]) -> dict[str, Any]:
    directory, host = args.get("dir"), args.get("host")
    if not isinstance(directory, str) or not directory.startswith("/"):
        raise AgentError("ha.beat needs 'dir', the absolute path of a shared storage domain")
    if not isinstance(host, str) or not host or "/" in host:
        raise AgentError("ha.beat needs 'host', the host's name in Corral")
    if not Path(directory).is_dir():
        raise AgentError(f"{directory} is not a directory on this host")
    interval = float(args.get("interval_s", 1.0))
    fence_after = float(args.get("fence_after_s", 20.0))
    if not 0.1 <= interval <= 10 or not interval * 3 <= fence_after <= 600:
        raise AgentError("interval_s must be 0.1-10 s and fence_after_s 3 intervals to 600 s")
    return {"dir": directory, "host": host, "interval_s": interval, "fence_after_s": fence_after}


def _running() -> int | None:
    try:
        pid = int((STATE_DIR / PID).read_text())
        comm = Path(f"/proc/{pid}/comm").read_bytes().strip()
    except (OSError, ValueError):
        return None
    return pid if comm == PROCESS_NAME else None


def beat(args: dict[str, Any]) -> dict[str, Any]:
    config = _config(args)
    STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = STATE_DIR / f".{CONFIG}.tmp"
    temporary.write_text(json.dumps(config))
    temporary.replace(STATE_DIR / CONFIG)
    pid = _running()
    if pid is not None:
        return {"pid": pid, "started": False, **config}
    from .netops import _self_command

    process = subprocess.Popen(
        [*_self_command(), "--ha-beat"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _running() != process.pid:
        time.sleep(0.05)
    if _running() != process.pid:
        raise AgentError("the heartbeat process did not start (see ha-beat.log on the host)")
    return {"pid": process.pid, "started": True, **config}


def beats(args: dict[str, Any]) -> dict[str, Any]:
    """Every host's last heartbeat in ``dir``: its sequence number (the manager watches it
    move, by its own clock) and when it was written (by the writer's clock)."""
    directory = args.get("dir")
    if not isinstance(directory, str) or not directory.startswith("/"):
        raise AgentError("ha.beats needs 'dir', an absolute path")
    return {"beats": read_beats(Path(directory))}


def read_beats(directory: Path) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = {}
    with contextlib.suppress(FileNotFoundError):
        for path in (directory / BEAT_DIR).glob("*.beat"):
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                data = json.loads(path.read_text())
                found[str(data["host"])] = {"seq": float(data["seq"]), "at": float(data["at"])}
    return found


# -- the beater ------------------------------------------------------------------------------
def _name_process() -> None:
    """``corral-hbeat`` in /proc/PID/comm: what a power cut in the test bed kills by name."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, ctypes.c_char_p(PROCESS_NAME), 0, 0, 0)  # PR_SET_NAME


def _log(line: str) -> None:
    with contextlib.suppress(OSError), (STATE_DIR / LOG).open("a") as handle:
        handle.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")


def _write_beat(config: dict[str, Any], sequence: int) -> None:
    target = Path(config["dir"]) / BEAT_DIR
    target.mkdir(exist_ok=True)
    temporary = target / f".{config['host']}.beat.tmp"
    with temporary.open("w") as handle:
        json.dump({"host": config["host"], "seq": sequence, "at": time.time()}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(target / f"{config['host']}.beat")


def kill_qemus() -> list[int]:
    killed = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (entry / "comm").read_text().startswith("qemu-system"):
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
    return killed


def run_beater() -> int:
    _name_process()
    (STATE_DIR / PID).write_text(str(os.getpid()))
    state: dict[str, Any] = {"last_ok": time.monotonic(), "error": ""}
    stop = threading.Event()

    def writer() -> None:
        sequence = 0
        while not stop.is_set():
            config = json.loads((STATE_DIR / CONFIG).read_text())
            sequence += 1
            try:
                _write_beat(config, sequence)
                state["last_ok"] = time.monotonic()
            except OSError as exc:
                state["error"] = str(exc)
            time.sleep(float(config["interval_s"]))

    threading.Thread(target=writer, daemon=True).start()
    _log(f"heartbeat started (pid {os.getpid()})")
    fenced = False
    while True:
        config = json.loads((STATE_DIR / CONFIG).read_text())
        silent = time.monotonic() - float(state["last_ok"])
        if silent > float(config["fence_after_s"]):
            killed = kill_qemus()
            if killed or not fenced:
                _log(f"no heartbeat written for {silent:.0f} s ({state['error'] or 'hung'}): "
                     f"killed QEMU processes {killed}")  # fmt: skip
            fenced = True
        elif fenced:
            _log("heartbeat written again")
            fenced = False
        time.sleep(min(0.5, float(config["interval_s"])))


def main_beater() -> int:
    try:
        return run_beater()
    except Exception as exc:  # noqa: BLE001 (a detached process: its last word goes to its log)
        _log(f"heartbeat process failed: {type(exc).__name__}: {exc}")
        return 1
    finally:
        sys.stdout.flush()


OPS = {"ha.beat": beat, "ha.beats": beats}
