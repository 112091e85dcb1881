"""A real BMC for a test-bed host: OpenIPMI's ``ipmi_sim`` (Debian ``openipmi``) speaking
IPMI-over-LAN on a UDP port of the test bed's bridge (or loopback), whose chassis power
control runs a hook that really switches the host: power off kills the host's QEMU
processes, ``libvirtd`` and ``sshd`` (the host stops answering, as a powered-off machine
would); power on starts ``libvirtd --listen`` and ``sshd`` again; the power state is whether
its ``libvirtd`` runs.

``ipmi_sim`` calls the hook as ``HOOK get power`` (answer ``power:0|1``) and ``HOOK set power
0|1`` (``chassis_control`` in its lan.conf, see ipmi_lan(5) and OpenIPMI's
``ipmi_sim_chassiscontrol``); the hook is this module run as a program.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from corral.errors import HostError, OperationTimeout
from corral.testbed.multihost import MultiHostTestbed, TestbedHost, _comm, _netns_pids

LAN_CONF = """\
# ipmi_sim for test-bed host {host} (corral.testbed.bmc)
name "corral-{host}"
set_working_mc 0x20
  startlan 1
    addr {address} {port}
    priv_limit admin
    allowed_auths_callback md5
    allowed_auths_user md5
    allowed_auths_operator md5
    allowed_auths_admin md5
    guid {guid}
  endlan
  chassis_control "{hook}"
  user 2 true "{user}" "{password}" admin 10 md5
"""
EMU = """\
mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02
mc_enable 0x20
"""


def free_udp_port(address: str = "127.0.0.1") -> int:
    """A UDP port free on ``address`` now (for a simulator, or for a BMC that never answers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((address, 0))
        port: int = sock.getsockname()[1]
        return port


class BmcSimulator:
    """``ipmi_sim`` for ``host`` of ``testbed``; ``start``/``stop`` or a ``with`` block. It
    leaves nothing behind: its process is stopped by its own pid."""

    def __init__(
        self,
        testbed: MultiHostTestbed,
        host: str,
        base: Path,
        *,
        address: str,
        port: int,
        user: str,
        password: str,
    ) -> None:
        self.testbed = testbed
        self.host = testbed.host(host)
        self.base = base
        self.address = address
        self.port = port
        self.user = user
        self.password = password
        self.events = base / "events.log"
        self._process: subprocess.Popen[bytes] | None = None

    def _write(self) -> Path:
        state = self.base / "state"
        state.mkdir(parents=True, exist_ok=True)
        src = Path(__file__).resolve().parents[2]
        hook = self.base / "chassis-hook"
        argv = [
            sys.executable,
            "-m",
            "corral.testbed.bmc",
            str(self.testbed.base),
            str(self.testbed.slot),
            str(self.testbed.count),
            self.host.name,
            str(self.events),
        ]
        hook.write_text(
            "#!/bin/sh\n# chassis control of a test-bed host (corral.testbed.bmc)\n"
            f'PYTHONPATH={shlex.quote(str(src))} exec {shlex.join(argv)} "$@"\n'
        )
        hook.chmod(0o700)
        conf = self.base / "lan.conf"
        conf.write_text(
            LAN_CONF.format(
                host=self.host.name,
                address=self.address,
                port=self.port,
                guid=f"{self.testbed.slot:08x}{self.host.index:024x}",
                hook=f"{hook} {self.host.name}",
                user=self.user,
                password=self.password,
            )
        )
        conf.chmod(0o600)
        (self.base / "sim.emu").write_text(EMU)
        return state

    def start(self, timeout: float = 10) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        state = self._write()
        log = (self.base / "ipmi_sim.log").open("ab")
        self._process = subprocess.Popen(
            [
                "ipmi_sim",
                "-n",
                "-c",
                str(self.base / "lan.conf"),
                "-f",
                str(self.base / "sim.emu"),
                "-s",
                str(state),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not self._listening():
            if self._process.poll() is not None:
                raise HostError(f"ipmi_sim exited: {self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise OperationTimeout(f"ipmi_sim did not listen on {self.address}:{self.port}")
            time.sleep(0.05)

    def _listening(self) -> bool:
        done = subprocess.run(
            ["ss", "-Hlun", f"sport = :{self.port}"], capture_output=True, text=True, check=False
        )
        return f"{self.address}:{self.port}" in done.stdout

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.base / "ipmi_sim.log").read_text(errors="replace")[-2000:]
        return ""

    def switched(self) -> list[str]:
        """What the hook was asked to do, oldest first (``on``/``off``)."""
        with contextlib.suppress(OSError):
            return self.events.read_text().split()
        return []

    def __enter__(self) -> BmcSimulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# -- the hook (run by ipmi_sim) ------------------------------------------------------------------
def is_on(testbed: MultiHostTestbed, host: TestbedHost) -> bool:
    return testbed.daemon_alive(host, "libvirtd")


def power_off(testbed: MultiHostTestbed, host: TestbedHost) -> None:
    """What losing power does to the host's processes (its PID 1 and virtlogd stay: they are
    the test bed's, not the host's "hardware")."""
    for pid in _netns_pids(host.netns):
        # QEMUs, and Corral's storage heartbeat (a power cut silences it too).
        if _comm(pid).startswith(("qemu-system", "corral-hbeat")):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    testbed.kill_daemon(host, "libvirtd")
    testbed.kill_daemon(host, "sshd")


def power_on(testbed: MultiHostTestbed, host: TestbedHost) -> None:
    if not testbed.daemon_alive(host, "libvirtd"):
        # Enrolled hosts listen (TLS); a host not enrolled yet has no certificates to.
        conf = (host.base / "libvirt-etc" / "libvirtd.conf").read_text()
        testbed.start_daemon(host, "libvirtd", *(["--listen"] if "BEGIN Corral" in conf else []))
    if not any(_comm(p) == "sshd" for p in _netns_pids(host.netns)):
        testbed.start_daemon(host, "sshd")


def hook(argv: list[str]) -> int:
    base, slot, count, name, events, _device, op, *params = argv
    testbed = MultiHostTestbed(Path(base), hosts=int(count), slot=int(slot))
    host = testbed.host(name)
    if op == "get":
        for param in params:
            if param != "power":
                print(f"Invalid parameter: {param}")
                return 1
            print(f"power:{1 if is_on(testbed, host) else 0}")
        return 0
    if op == "set":
        pairs = dict(zip(params[::2], params[1::2], strict=False))
        if set(pairs) - {"power"} or pairs.get("power") not in ("0", "1"):
            print(f"unsupported: {' '.join(params)}")
            return 1
        on = pairs["power"] == "1"
        (power_on if on else power_off)(testbed, host)
        with Path(events).open("a") as log:
            log.write(("on" if on else "off") + "\n")
        return 0
    print(f"Unknown operation: {op}")
    return 1


if __name__ == "__main__":
    sys.exit(hook(sys.argv[1:]))
