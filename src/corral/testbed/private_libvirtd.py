"""A private libvirtd for the test suite, isolated from the machine's own libvirt.

Test guests and private libvirtd
--------------------------------
Integration tests must not use the system daemon (its domains are the user's), so each test
session starts its own ``virtlogd`` + ``libvirtd`` (see ``docs/testbed.md``, "One private libvirtd
for the test suite"). How it works:

* ``unshare --mount --net --propagation private`` starts a *holder* shell in a new mount namespace
  and a new network namespace. It records its pid and namespace ids in ``BASE/namespace``, brings
  ``lo`` up and bind-mounts directories of ``BASE`` over libvirt's own:

  ==========================  =============  ============================================
  path inside                 path outside   contents
  ==========================  =============  ============================================
  ``/etc/libvirt``            ``BASE/etc``   fresh ``libvirtd.conf``/``qemu.conf``/... (below)
  ``/var/lib/libvirt``        ``BASE/lib``   domain state, VNC sockets (``qemu/domain-N-x/``)
  ``/var/cache/libvirt``      ``BASE/cache`` QEMU capabilities cache (kept; may be shared)
  ``/var/log/libvirt``        ``BASE/log``   ``libvirtd.log``, ``qemu/<domain>.log``
  ``/run/libvirt``            ``BASE/run``   sockets (``libvirt-sock``) and pid files
  ==========================  =============  ============================================

  then runs ``virtlogd -d -p …`` and ``libvirtd -d -p …`` (explicit pid files: the system daemon
  holds ``/run/libvirtd.pid``) and finally ``exec sleep infinity`` to keep the namespaces alive.
* The test process stays outside and connects to :attr:`PrivateLibvirtd.uri`
  (``qemu+unix:///system?socket=BASE/run/libvirt-sock``). Paths libvirt reports from inside map to
  paths outside with :meth:`PrivateLibvirtd.host_path`.
* Because the network namespace is private, NAT networks, bridges, dnsmasq and iptables rules the
  daemon creates never reach the real machine — and TCP ports QEMU opens (VNC on 127.0.0.1:59xx,
  migration) are reachable only from inside: use UNIX sockets (``<listen type='socket'/>``), or run
  a client inside with :meth:`PrivateLibvirtd.inside_command`.
* ``qemu.conf`` sets ``user``/``group`` to root (QEMU needs no access to /dev/kvm, whose 0600 mode
  otherwise makes libvirt re-probe QEMU on every call), ``security_driver = "none"`` and
  ``remember_owner = 0`` (no xattrs left on image files by a killed daemon). Only root may use the
  socket (``unix_sock_rw_perms = "0700"``, no polkit).

Leftovers: the bind mounts exist only inside the private mount namespace, so nothing is mounted on
the real machine and they disappear with the last process of the namespace. :meth:`stop` destroys
running domains, stops both daemons, then kills every process still in the namespaces. A test run
that crashed leaves ``BASE/namespace`` behind: :meth:`start` kills the processes it names first
(matched by namespace ids, not by name), then wipes ``BASE`` except the capabilities cache.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path, PurePosixPath
from types import TracebackType

from corral.errors import HostError, OperationTimeout

# Inside path -> subdirectory of the base dir (order matters only for readability).
MAPPED_DIRS: dict[str, str] = {
    "/etc/libvirt": "etc",
    "/var/lib/libvirt": "lib",
    "/var/cache/libvirt": "cache",
    "/var/log/libvirt": "log",
    "/run/libvirt": "run",
}
# Wiped on every start; "cache" survives so the one-time QEMU probe (~4 s) is paid once per base.
_WIPED = ("etc", "lib", "log", "run")
LIBVIRTD_PID = "/run/libvirt/libvirtd.pid"
VIRTLOGD_PID = "/run/libvirt/virtlogd.pid"

LIBVIRTD_CONF = """\
# Private libvirtd of the Corral test suite (corral.testbed.private_libvirtd).
unix_sock_group = "root"
unix_sock_ro_perms = "0700"
unix_sock_rw_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
"""
QEMU_CONF = """\
# Private libvirtd of the Corral test suite (corral.testbed.private_libvirtd).
user = "root"
group = "root"
security_driver = "none"
remember_owner = 0
"""
VIRTLOGD_CONF = """\
log_outputs = "3:file:/var/log/libvirt/virtlogd.log"
"""


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _sees_mount(pid: int, mount_point: str, source: Path) -> bool:
    """True if ``pid`` has ``source`` bind-mounted on ``mount_point`` (per its mountinfo)."""
    try:
        lines = Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
    except OSError:
        return False
    # Fields: id parent major:minor root mount-point ...; root is relative to the source fs.
    return any(
        len(fields) > 4 and fields[4] == mount_point and str(source).endswith(fields[3])
        for fields in (line.split() for line in lines)
    )


def _namespace_members(mnt: str, net: str, run_dir: Path) -> list[int]:
    """Pids of the live processes in both namespaces (ids like ``mnt:[4026532301]``).

    Namespace ids are reused after a reboot, so a process must also see ``run_dir`` mounted on
    /run/libvirt before it counts as ours.
    """
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            same = os.readlink(entry / "ns/mnt") == mnt and os.readlink(entry / "ns/net") == net
        except OSError:
            continue
        pid = int(entry.name)
        if same and _alive(pid) and _sees_mount(pid, "/run/libvirt", run_dir):
            members.append(pid)
    return members


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := [pid for pid in pids if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class PrivateLibvirtd:
    """A libvirtd + virtlogd in private mount and network namespaces, files under ``base_dir``."""

    def __init__(self, base_dir: Path, shared_cache: Path | None = None) -> None:
        """``shared_cache``: a directory to use as /var/cache/libvirt instead of ``BASE/cache``.

        libvirt validates its cached QEMU capabilities itself, so daemons of several sessions (or
        test directories) may share one cache and pay the ~4 s QEMU probe once.
        """
        self.base = base_dir.resolve()
        self.cache = (shared_cache or self.base / "cache").resolve()
        self._holder: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"qemu+unix:///system?socket={self.base / 'run' / 'libvirt-sock'}"

    @property
    def holder_pid(self) -> int | None:
        """Pid of the process holding the namespaces (for ``nsenter --target``), if running."""
        ns = self._read_namespace()
        return ns[0] if ns is not None and ns[0] in self._members(ns) else None

    def host_path(self, inside: str) -> Path:
        """Where the test process sees a path libvirt or QEMU reports from inside."""
        path = PurePosixPath(inside.replace("/var/run/", "/run/", 1))
        for prefix in MAPPED_DIRS:
            if path.is_relative_to(prefix):
                return self._outside(prefix) / path.relative_to(prefix)
        return Path(inside)

    def _outside(self, inside_dir: str) -> Path:
        sub = MAPPED_DIRS[inside_dir]
        return self.cache if sub == "cache" else self.base / sub

    def inside_command(self, argv: list[str]) -> list[str]:
        """``argv`` wrapped in ``nsenter`` so it runs in the daemon's namespaces."""
        pid = self.holder_pid
        if pid is None:
            raise HostError("the private libvirtd is not running: call start() first")
        return ["nsenter", f"--target={pid}", "--mount", "--net", "--", *argv]

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, timeout: float = 30) -> None:
        """Start both daemons and wait (bounded) until a libvirt connection succeeds.

        Whatever a previous run left in this base dir (daemons, QEMU processes) is stopped first.
        """
        self.stop()
        self._prepare_dirs()
        unshare = ["unshare", "--mount", "--net", "--propagation", "private", "--"]
        with (self.base / "holder.log").open("wb") as log:
            self._holder = subprocess.Popen(
                [*unshare, "sh", "-c", self._holder_script()],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_connectable(timeout)

    def stop(self) -> None:
        """Destroy remaining domains, stop the daemons, kill what is left; idempotent."""
        ns = self._read_namespace()
        if ns is not None:
            if self._members(ns) and self._connectable():
                self._destroy_domains()
            self._terminate_daemons(ns)
            self._kill_namespace(ns)
        if self._holder is not None:
            if self._holder.poll() is None:
                self._holder.kill()
            self._holder.wait(timeout=10)
            self._holder = None

    def restart_libvirtd(self, timeout: float = 30) -> None:
        """Stop libvirtd with SIGTERM and start it again; running QEMU guests keep running."""
        pid = self.holder_pid
        if pid is None:
            raise HostError("the private libvirtd is not running: call start() first")
        daemon = self._daemon_pid(LIBVIRTD_PID, self._members(self._read_namespace()))
        if daemon is not None:
            _signal(daemon, signal.SIGTERM)
            if _wait_gone([daemon], 15):
                _signal(daemon, signal.SIGKILL)
                _wait_gone([daemon], 5)
        with (self.base / "log" / "restart.log").open("ab") as log:
            done = subprocess.run(
                self.inside_command(["libvirtd", "-d", "-p", LIBVIRTD_PID]),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                check=False,
            )
        if done.returncode != 0:
            raise HostError(
                f"libvirtd did not start again (exit status {done.returncode}); see "
                f"{self.base / 'log'}/restart.log and libvirtd.log"
            )
        self._wait_connectable(timeout)

    def __enter__(self) -> PrivateLibvirtd:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- helpers -------------------------------------------------------------------------------

    def _holder_script(self) -> str:
        q = shlex.quote
        lines = [
            "set -e",
            f'echo "$$ $(readlink /proc/$$/ns/mnt) $(readlink /proc/$$/ns/net)" '
            f">{q(str(self.base / 'namespace'))}",
            *(f"mount --bind {q(str(self._outside(d)))} {q(d)}" for d in MAPPED_DIRS),
            "ip link set lo up",
            f"virtlogd -d -p {VIRTLOGD_PID}",
            f"libvirtd -d -p {LIBVIRTD_PID}",
            "exec sleep infinity",
        ]
        return "\n".join(lines)

    def _prepare_dirs(self) -> None:
        for sub in _WIPED:
            shutil.rmtree(self.base / sub, ignore_errors=True)
        for inside in MAPPED_DIRS:
            self._outside(inside).mkdir(parents=True, exist_ok=True)
        for sub in ("lib/qemu", "lib/images", "lib/boot", "lib/dnsmasq", "log/qemu"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        etc = self.base / "etc"
        (etc / "qemu" / "networks").mkdir(parents=True)
        # nwfilter holds the stock filter definitions; the user's domains, networks, pools and
        # secrets under /etc/libvirt are deliberately not copied.
        if Path("/etc/libvirt/nwfilter").is_dir():
            shutil.copytree("/etc/libvirt/nwfilter", etc / "nwfilter")
        (etc / "libvirtd.conf").write_text(LIBVIRTD_CONF)
        (etc / "qemu.conf").write_text(QEMU_CONF)
        (etc / "virtlogd.conf").write_text(VIRTLOGD_CONF)
        # A mount point must exist; libvirt creates /run/libvirt only when its daemon first runs.
        Path("/run/libvirt").mkdir(exist_ok=True)

    def _read_namespace(self) -> tuple[int, str, str] | None:
        try:
            pid, mnt, net = (self.base / "namespace").read_text().split()
        except (OSError, ValueError):
            return None
        return int(pid), mnt, net

    def _members(self, ns: tuple[int, str, str] | None) -> list[int]:
        return [] if ns is None else _namespace_members(ns[1], ns[2], self.base / "run")

    def _kill_namespace(self, ns: tuple[int, str, str]) -> None:
        members = self._members(ns)
        for pid in members:
            _signal(pid, signal.SIGKILL)
        left = _wait_gone(members, 10)
        if left:
            raise HostError(f"processes {left} of the private libvirtd did not die on SIGKILL")
        (self.base / "namespace").unlink(missing_ok=True)

    def _daemon_pid(self, inside_pidfile: str, members: list[int]) -> int | None:
        """The pid in a daemon's pid file if that process is one of ours (pids get reused)."""
        try:
            pid = int(self.host_path(inside_pidfile).read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid in members else None

    def _terminate_daemons(self, ns: tuple[int, str, str]) -> None:
        members = self._members(ns)
        daemons = (self._daemon_pid(f, members) for f in (LIBVIRTD_PID, VIRTLOGD_PID))
        pids = [pid for pid in daemons if pid is not None]
        for pid in pids:
            _signal(pid, signal.SIGTERM)
        _wait_gone(pids, 10)

    def _virsh(self, *args: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["virsh", "-q", "-c", self.uri, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _connectable(self) -> bool:
        if not (self.base / "run" / "libvirt-sock").exists():
            return False
        try:
            return self._virsh("uri", timeout=5).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def _destroy_domains(self) -> None:
        try:
            names = self._virsh("list", "--name").stdout.split()
            for name in names:
                self._virsh("destroy", name, timeout=20)
        except subprocess.TimeoutExpired:
            pass  # the namespace kill that follows ends the QEMU processes anyway

    def _wait_connectable(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._holder is not None and self._holder.poll() is not None:
                raise HostError(
                    "the private libvirtd failed to start:\n"
                    f"{_tail(self.base / 'holder.log')}\n{_tail(self.base / 'log/libvirtd.log')}"
                )
            if self._connectable():
                return
            time.sleep(0.1)
        raise OperationTimeout(
            f"the private libvirtd did not accept connections within {timeout:.0f} s; its log:\n"
            f"{_tail(self.base / 'log/libvirtd.log')}"
        )
