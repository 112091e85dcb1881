"""Several libvirt hosts on one machine, from namespaces (``docs/testbed.md``, "Several hosts
on one machine").

Host ``hN`` of slot ``S``:

* network: namespace ``crlSh N`` (``ip netns``), a veth into bridge ``crlSbr`` in the root
  namespace (``198.18.S.254/24``), address ``198.18.S.N``; ``/etc/hosts`` names every host;
  with ``lan=True`` a second NIC per host, named differently on each (``LAN_NICS``: h1
  ``ens4``, h2 ``enp2s0``, …), on bridge ``lan`` in namespace ``crlSlan`` (a LAN that neither
  the machine nor Corral is on: bridged networks' uplinks);
* private mount, UTS and PID namespaces whose PID 1 (``_host_init.py``) mounts a copy-on-write
  ``/etc`` (overlay: what enrollment writes, e.g. ``/etc/pki``, lands in ``BASE/hN/etc``), a
  fresh ``/etc/libvirt`` (``BASE/hN/libvirt-etc``) and private ``/run``, ``/var/lib/libvirt``,
  ``/var/log/libvirt``, ``/var/lib/corral-agent`` (the host agent's home) (``BASE/hN/…``;
  ``/var/cache/libvirt`` is shared: QEMU is probed once);
* its own ``virtlogd``, ``libvirtd`` (distinct ``host_uuid``; local socket only until enrolled)
  and ``sshd`` on its address (a private config with ``-f``, its own host key, root login with
  the key the test bed generates, ``BASE/ssh/id_ed25519``). The machine's sshd and /etc/ssh
  are never touched.

Killing a host's PID 1 ends every process of the host; ``down()`` does that for every process in
the slot's network namespaces, deletes them (their veths go with them) and the bridge. ``up()``
first removes whatever a crashed run of the same slot left. Tests take a free slot with
:func:`allocate_slot` (a lock file per slot); ``corral testbed up`` uses slot 0 unless told.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from corral.errors import HostError, OperationTimeout
from corral.testbed.private_libvirtd import QEMU_CONF, VIRTLOGD_CONF

SSH_PORT = 22
#: The names of the hosts' LAN NICs, in host order (then again from the start).
LAN_NICS = ("ens4", "enp2s0", "eno2", "ens5f1", "enp7s0")
#: The host agent's home on a host (``hostsetup.agent.AGENT_DIR``): private to each test-bed host.
HOST_AGENT_HOME = "/var/lib/corral-agent"
_LOCK_DIR = Path("/run/corral-testbed")
LIBVIRTD_CONF = """\
# A test-bed host (corral.testbed.multihost): local socket only until `corral host enroll`.
unix_sock_group = "root"
unix_sock_ro_perms = "0700"
unix_sock_rw_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
host_uuid = "{host_uuid}"
"""
MIGRATION_SSH = """\
#!/bin/sh
# The ssh client for migrations between test-bed hosts (Corral's ssh transport option
# `command`): the test bed's key and its known host keys, never the machine's ~/.ssh.
exec ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile={known_hosts} \\
    -o IdentitiesOnly=yes -i {key} "$@"
"""
SSHD_CONFIG = """\
# sshd of test-bed host {name} (corral.testbed.multihost); the machine's sshd is not involved.
ListenAddress {address}
Port {port}
HostKey {host_key}
PidFile /run/sshd.pid
AuthorizedKeysFile {authorized_keys}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
"""


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    if check and done.returncode != 0:
        raise HostError(f"{' '.join(argv)} failed: {done.stderr.strip() or done.returncode}")
    return done


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _netns_pids(netns: str) -> list[int]:
    done = _run("ip", "netns", "pids", netns, check=False)
    return [int(p) for p in done.stdout.split() if p.isdigit()]


def qemu_processes(netns: str, vm: str) -> list[int]:
    """Live QEMU processes in ``netns`` running VM ``vm`` (by QEMU's ``-name guest=VM``): what
    runs, whatever a libvirtd that just restarted lists before it has looked."""
    found = []
    for pid in _netns_pids(netns):
        with contextlib.suppress(OSError):
            if not Path(f"/proc/{pid}/comm").read_text().startswith("qemu-system"):
                continue
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if any(
                a.startswith(f"guest={vm},".encode()) or a == f"guest={vm}".encode() for a in args
            ):
                found.append(pid)
    return found


def _inner_pid1(pids: list[int]) -> int | None:
    """The process among ``pids`` that is PID 1 of its own PID namespace (a host's init)."""
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("NSpid:") and line.split()[-1] == "1" and len(line.split()) > 2:
                    return pid
    return None


def allocate_slot(first: int = 100, last: int = 199) -> tuple[int, IO[str]]:
    """A slot no other live process holds, and the open lock file that holds it."""
    _LOCK_DIR.mkdir(parents=True, exist_ok=True)
    for slot in range(first, last + 1):
        handle = (_LOCK_DIR / f"slot-{slot}.lock").open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return slot, handle
    raise HostError(f"every test-bed slot from {first} to {last} is in use")


@dataclass(frozen=True)
class TestbedHost:
    __test__ = False  # not a pytest test class

    name: str
    index: int
    address: str
    netns: str
    base: Path
    #: The host's NIC on the test bed's LAN (``MultiHostTestbed(lan=True)``), else None.
    lan_nic: str | None = None

    @property
    def ssh_destination(self) -> str:
        return f"root@{self.address}"

    @property
    def unix_uri(self) -> str:
        """libvirt over the host's UNIX socket, from the root namespace (harness only)."""
        return f"qemu+unix:///system?socket={self.base / 'run' / 'libvirt' / 'libvirt-sock'}"

    @property
    def agent_home(self) -> Path:
        """The host's /var/lib/corral-agent (the host agent's home), seen from outside."""
        return self.base / "agent-home"

    @property
    def etc_dirs(self) -> tuple[Path, Path]:
        """Where the host's /etc changes (overlay upper dir) and its /etc/libvirt are."""
        return self.base / "etc", self.base / "libvirt-etc"

    def init_pid(self) -> int | None:
        return _inner_pid1(_netns_pids(self.netns))

    def inside(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the host (all its namespaces)."""
        pid = self.init_pid()
        if pid is None:
            raise HostError(f"test-bed host {self.name} is not running")
        return ["nsenter", f"--target={pid}", "--mount", "--uts", "--pid", "--net", "--", *argv]


class MultiHostTestbed:
    def __init__(
        self,
        base_dir: Path,
        hosts: int = 3,
        slot: int = 0,
        shared_cache: Path | None = None,
        *,
        lan: bool = False,
    ) -> None:
        if not 1 <= hosts <= 200:
            raise ValueError("a test bed has 1 to 200 hosts")
        if not 0 <= slot <= 255:
            raise ValueError("slots are 0 to 255")
        self.base = base_dir.resolve()
        self.slot = slot
        self.count = hosts
        self.cache = (shared_cache or self.base / "cache").resolve()
        self.bridge = f"crl{slot}br"
        #: A second segment (a "LAN" for bridged VMs): a bridge ``lan`` in a namespace of its
        #: own, so neither the machine nor Corral is on it (a bridge device in the root
        #: namespace would answer for the root's addresses there). Each host's NIC on it has
        #: another name, as on real machines (h1 ens4, h2 enp2s0, h3 eno2, …).
        self.lan_netns = f"crl{slot}lan" if lan else None
        self.gateway = f"198.18.{slot}.254"
        self.hosts = [
            TestbedHost(
                name=f"h{n}",
                index=n,
                address=f"198.18.{slot}.{n}",
                netns=f"crl{slot}h{n}",
                base=self.base / f"h{n}",
                lan_nic=LAN_NICS[(n - 1) % len(LAN_NICS)] if lan else None,
            )
            for n in range(1, hosts + 1)
        ]

    @property
    def ssh_key(self) -> Path:
        return self.base / "ssh" / "id_ed25519"

    @property
    def migration_ssh_command(self) -> Path:
        """An ssh client wrapper for hosts reaching each other (the ssh migration transport's
        ``command``): the test bed's key, host keys pinned in ``BASE/ssh/known_hosts``."""
        return self.base / "ssh" / "migration-ssh"

    def migration_transport_options(self) -> dict[str, dict[str, str]]:
        """Corral's ``migration_transports`` setting for this test bed."""
        return {"ssh": {"command": str(self.migration_ssh_command)}}

    def host(self, name: str) -> TestbedHost:
        return next(h for h in self.hosts if h.name == name)

    # -- up and down ---------------------------------------------------------------------------
    def up(self, timeout: float = 60) -> None:
        """Build every host and wait (bounded) until each one's libvirtd and sshd answer."""
        self.down()
        self._prepare_keys()
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        if self.lan_netns is not None:
            _run("ip", "netns", "add", self.lan_netns)
            _run("ip", "-n", self.lan_netns, "link", "add", "lan", "type", "bridge")
            _run("ip", "-n", self.lan_netns, "link", "set", "lan", "up")
        for host in self.hosts:
            self._start_host(host)
        self._write_migration_ssh()
        deadline = time.monotonic() + timeout
        for host in self.hosts:
            self._wait_ready(host, deadline)

    def down(self) -> None:
        """Kill every process of the slot's hosts, delete namespaces and bridge; idempotent.
        Also cleans up after a crashed run of the same slot."""
        prefix = f"crl{self.slot}h"
        listed = _run("ip", "netns", "list", check=False).stdout.split("\n")
        names = {line.split()[0] for line in listed if line.startswith(prefix)}
        names |= {h.netns for h in self.hosts if Path(f"/run/netns/{h.netns}").exists()}
        pids = [pid for name in names for pid in _netns_pids(name)]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        for name in names:
            _run("ip", "netns", "del", name, check=False)
        if Path(f"/run/netns/crl{self.slot}lan").exists():
            _run("ip", "netns", "del", f"crl{self.slot}lan", check=False)
        # A deleted namespace lives on while another mount namespace holds a copy of its
        # /run/netns mount (a host of another slot started meanwhile has one), and with it the
        # veth's other end here, whose name the next up() needs: delete that end.
        for veth in Path("/sys/class/net").glob(f"crl{self.slot}v*"):
            _run("ip", "link", "del", veth.name, check=False)
        if Path(f"/sys/class/net/{self.bridge}").exists():
            _run("ip", "link", "del", self.bridge, check=False)

    def __enter__(self) -> MultiHostTestbed:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    # -- one host ------------------------------------------------------------------------------
    def _prepare_keys(self) -> None:
        ssh = self.base / "ssh"
        ssh.mkdir(parents=True, exist_ok=True)
        if not self.ssh_key.exists():
            _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "corral-testbed",
                 "-f", str(self.ssh_key))  # fmt: skip
        shutil.copyfile(self.ssh_key.with_suffix(".pub"), ssh / "authorized_keys")
        lines = ["127.0.0.1 localhost", *(f"{h.address} {h.name}" for h in self.hosts)]
        (self.base / "hosts").write_text("\n".join(lines) + "\n")

    def _write_migration_ssh(self) -> None:
        ssh = self.base / "ssh"
        lines = []
        for host in self.hosts:
            key = (host.base / "ssh" / "ssh_host_ed25519_key.pub").read_text().split()
            lines.append(f"{host.address},{host.name} {key[0]} {key[1]}")
        (ssh / "known_hosts").write_text("\n".join(lines) + "\n")
        self.migration_ssh_command.write_text(
            MIGRATION_SSH.format(known_hosts=ssh / "known_hosts", key=self.ssh_key)
        )
        self.migration_ssh_command.chmod(0o755)

    def _prepare_host(self, host: TestbedHost) -> None:
        b = host.base
        for sub in ("run", "lib", "log", "etc", "etc-work", "libvirt-etc", "agent-home"):
            shutil.rmtree(b / sub, ignore_errors=True)
        for sub in ("run", "lib/qemu", "lib/images", "lib/boot", "lib/dnsmasq", "log/qemu", "etc",
                    "etc-work", "libvirt-etc/qemu/networks", "ssh", "agent-home"):  # fmt: skip
            (b / sub).mkdir(parents=True, exist_ok=True)
        # The mount point of each host's private agent home.
        Path(HOST_AGENT_HOME).mkdir(parents=True, exist_ok=True)
        self.cache.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.base / "hosts", b / "etc" / "hosts")
        etc = b / "libvirt-etc"
        if Path("/etc/libvirt/nwfilter").is_dir():
            shutil.copytree("/etc/libvirt/nwfilter", etc / "nwfilter")
        host_uuid = uuid.uuid5(uuid.NAMESPACE_DNS, f"{host.name}.slot{self.slot}.corral-testbed")
        (etc / "libvirtd.conf").write_text(LIBVIRTD_CONF.format(host_uuid=host_uuid))
        (etc / "qemu.conf").write_text(QEMU_CONF)
        (etc / "virtlogd.conf").write_text(VIRTLOGD_CONF)
        host_key = b / "ssh" / "ssh_host_ed25519_key"
        if not host_key.exists():
            _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key))
        (b / "ssh" / "sshd_config").write_text(
            SSHD_CONFIG.format(
                name=host.name,
                address=host.address,
                port=SSH_PORT,
                host_key=host_key,
                authorized_keys=self.base / "ssh" / "authorized_keys",
            )
        )
        (b / "ready").unlink(missing_ok=True)

    def _init_config(self, host: TestbedHost) -> str:
        b = host.base
        return json.dumps(
            {
                "hostname": host.name,
                "mounts": [
                    ["overlay", [str(b / "etc"), str(b / "etc-work")], "/etc"],
                    ["bind", str(b / "libvirt-etc"), "/etc/libvirt"],
                    ["bind", str(b / "run"), "/run"],
                    ["bind", str(b / "lib"), "/var/lib/libvirt"],
                    ["bind", str(self.cache), "/var/cache/libvirt"],
                    ["bind", str(b / "log"), "/var/log/libvirt"],
                    ["bind", str(b / "agent-home"), HOST_AGENT_HOME],
                ],
                "daemons": [
                    ["virtlogd", "-d"],
                    ["libvirtd", "-d"],
                    [
                        "/usr/sbin/sshd",
                        "-f",
                        str(b / "ssh" / "sshd_config"),
                        "-E",
                        "/var/log/libvirt/sshd.log",
                    ],
                ],
                "ready": str(b / "ready"),
            }
        )

    def _start_host(self, host: TestbedHost) -> None:
        self._prepare_host(host)
        veth = f"crl{self.slot}v{host.index}"
        _run("ip", "netns", "add", host.netns)
        _run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0",
             "netns", host.netns)  # fmt: skip
        _run("ip", "link", "set", veth, "master", self.bridge, "up")
        _run("ip", "-n", host.netns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        _run("ip", "-n", host.netns, "link", "set", "eth0", "up")
        if self.lan_netns is not None and host.lan_nic is not None:
            port = f"{host.name}-lan"
            _run("ip", "-n", self.lan_netns, "link", "add", port, "type", "veth", "peer", "name",
                 host.lan_nic, "netns", host.netns)  # fmt: skip
            _run("ip", "-n", self.lan_netns, "link", "set", port, "master", "lan", "up")
            _run("ip", "-n", host.netns, "link", "set", host.lan_nic, "up")
        init = (Path(__file__).with_name("_host_init.py")).read_text()
        with (host.base / "init.log").open("wb") as log:
            subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    host.netns,
                    "unshare",
                    "--mount",
                    "--uts",
                    "--pid",
                    "--fork",
                    "--kill-child",
                    "--mount-proc",
                    "--propagation",
                    "private",
                    "--",
                    sys.executable,
                    "-I",
                    "-c",
                    init,
                    self._init_config(host),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait_ready(self, host: TestbedHost, deadline: float) -> None:
        sock = host.base / "run" / "libvirt" / "libvirt-sock"
        while time.monotonic() < deadline:
            if (host.base / "ready").exists() and sock.exists():
                return
            if host.init_pid() is None and time.monotonic() > deadline - 55:
                log = (host.base / "init.log").read_text(errors="replace")[-2000:]
                if log:
                    raise HostError(f"test-bed host {host.name} failed to start:\n{log}")
            time.sleep(0.05)
        raise OperationTimeout(f"test-bed host {host.name} was not ready in time")

    # -- faults and repairs for tests ----------------------------------------------------------
    def _pid_from(self, host: TestbedHost, pidfile: str) -> int | None:
        try:
            pid = int((host.base / "run" / pidfile).read_text().strip())
        except (OSError, ValueError):
            return None
        # The pid file holds the pid inside the host; find that process outside.
        for outer in _netns_pids(host.netns):
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{outer}/status").read_text().splitlines():
                    if line.startswith("NSpid:") and line.split()[-1] == str(pid):
                        return outer
        return None

    def daemon_alive(self, host: TestbedHost, daemon: str) -> bool:
        """Whether ``libvirtd`` (or another daemon with a pid file in the host's /run) runs."""
        pid = self._pid_from(host, f"{daemon}.pid")
        return pid is not None and _alive(pid)

    def kill_daemon(self, host: TestbedHost, daemon: str) -> None:
        """SIGKILL ``libvirtd`` or ``sshd`` (with every sshd session) on ``host``."""
        if daemon == "sshd":
            targets = [p for p in _netns_pids(host.netns) if _comm(p) == "sshd"]
        else:
            pid = self._pid_from(host, f"{daemon}.pid")
            targets = [pid] if pid is not None else []
        for pid in targets:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while any(_alive(p) for p in targets) and time.monotonic() < deadline:
            time.sleep(0.02)

    def start_daemon(self, host: TestbedHost, daemon: str, *args: str) -> None:
        if daemon == "sshd":
            argv = ["/usr/sbin/sshd", "-f", str(host.base / "ssh" / "sshd_config"),
                    "-E", "/var/log/libvirt/sshd.log"]  # fmt: skip
        else:
            argv = [daemon, "-d", *args]
        _run(*host.inside(argv))


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""
