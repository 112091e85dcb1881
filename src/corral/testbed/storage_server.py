"""The test bed's storage server: NFS and iSCSI from userspace daemons in a namespace of their own
(``docs/testbed.md``, "A storage server for the test bed").

This machine's kernel has no NFS server and no iSCSI target, so the servers are Debian's
userspace ones, reached by QEMU's own clients (``qemu-block-extra``: libnfs, libiscsi) on the
test-bed hosts:

* network: namespace ``crlSst`` with a veth into the slot's bridge ``crlSbr``, address
  ``198.18.S.200/24`` (test-bed hosts are ``198.18.S.1…``, the bridge ``.254``);
* private mount, UTS and PID namespaces whose PID 1 (``_storage_init.py``) mounts
  ``BASE/run`` over ``/run`` and ``BASE/nfs-state`` over ``/var/lib/nfs``, then starts
  ``rpcbind``, ``rpc.statd``, ``nfs-ganesha`` and ``tgtd``;
* NFS: ganesha's VFS backend exports ``BASE/export`` as ``/export`` (NFSv3 with its mountd and
  NLM, and NFSv4; ``No_Root_Squash``, so QEMU running as root creates and writes files;
  ``Graceless``: no 90 s grace period after start). URL ``nfs://198.18.S.200/export/NAME``;
* iSCSI: tgt's target :data:`DEFAULT_IQN` on port 3260 with file-backed LUNs 1…N
  (``BASE/luns/lunN.img``, sparse, of the sizes asked for), open to every initiator.
  URL ``iscsi://198.18.S.200/IQN/N``.

``down()`` kills every process of the namespace (killing PID 1 ends them all), deletes the
namespace (its veth goes with it) and ``BASE``; ``up()`` first does the same for a crashed run of
the same slot. It never touches the slot's hosts or bridge (:mod:`corral.testbed.multihost`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from corral.errors import HostError, OperationTimeout
from corral.testbed.multihost import MultiHostTestbed

__all__ = ["DEFAULT_IQN", "EXPORT", "STORAGE_HOST_INDEX", "StorageServer"]

STORAGE_HOST_INDEX = 200
EXPORT = "/export"
DEFAULT_IQN = "iqn.2026-12.test.corral:storage"
ISCSI_PORT = 3260
GANESHA_CONF = """\
# nfs-ganesha of the Corral test bed's storage server (corral.testbed.storage_server).
NFS_CORE_PARAM {{
    Protocols = 3, 4;
    Enable_NLM = true;
    Enable_RQUOTA = false;
    # NFSv3 clients mount the pseudo path (/export), as NFSv4 ones do, not the directory.
    mount_path_pseudo = true;
}}
NFSv4 {{
    # No grace period after start: clients may open and lock at once (nothing to recover).
    Graceless = true;
}}
NFS_KRB5 {{
    Active_krb5 = false;
}}
EXPORT {{
    Export_Id = 1;
    Path = {path};
    Pseudo = {pseudo};
    Protocols = 3, 4;
    Transports = TCP, UDP;
    Access_Type = RW;
    Squash = No_Root_Squash;
    SecType = sys;
    FSAL {{
        Name = VFS;
    }}
}}
LOG {{
    Default_Log_Level = EVENT;
}}
"""


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    if check and done.returncode != 0:
        raise HostError(f"{' '.join(argv)} failed: {done.stderr.strip() or done.returncode}")
    return done


def _netns_pids(netns: str) -> list[int]:
    done = _run("ip", "netns", "pids", netns, check=False)
    return [int(p) for p in done.stdout.split() if p.isdigit()]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


class StorageServer:
    """NFS (nfs-ganesha) and iSCSI (tgt) at ``198.18.SLOT.200`` on a test-bed slot's bridge."""

    def __init__(
        self,
        base_dir: Path,
        slot: int,
        *,
        lun_sizes_mib: tuple[int, ...] = (64, 64, 64, 64),
        iqn: str = DEFAULT_IQN,
    ) -> None:
        if not 0 <= slot <= 255:
            raise ValueError("slots are 0 to 255")
        if not lun_sizes_mib or min(lun_sizes_mib) < 1:
            raise ValueError("the target needs at least one LUN of at least 1 MiB")
        self.base = base_dir.resolve()
        self.slot = slot
        self.lun_sizes_mib = lun_sizes_mib
        self.iqn = iqn
        self.bridge = f"crl{slot}br"
        self.netns = f"crl{slot}st"
        self.veth = f"crl{slot}vs"
        self.address = f"198.18.{slot}.{STORAGE_HOST_INDEX}"
        self._init: subprocess.Popen[bytes] | None = None

    @classmethod
    def for_testbed(
        cls, testbed: MultiHostTestbed, lun_sizes_mib: tuple[int, ...] = (64, 64, 64, 64)
    ) -> StorageServer:
        """A storage server on ``testbed``'s bridge, keeping its files in ``BASE/storage``."""
        return cls(testbed.base / "storage", testbed.slot, lun_sizes_mib=lun_sizes_mib)

    # -- what clients use ----------------------------------------------------------------------
    @property
    def export_dir(self) -> Path:
        """The exported directory, as the test process sees it (``/export`` over NFS)."""
        return self.base / "export"

    @property
    def portal(self) -> str:
        return f"{self.address}:{ISCSI_PORT}"

    def nfs_url(self, name: str = "") -> str:
        """``nfs://ADDRESS/export/NAME``, the form qemu-img and libnfs take."""
        return f"nfs://{self.address}{EXPORT}/{name}"

    def iscsi_url(self, lun: int) -> str:
        return f"iscsi://{self.address}/{self.iqn}/{lun}"

    def lun_file(self, lun: int) -> Path:
        """The file behind LUN ``lun`` (1…N), as the test process sees it."""
        if not 1 <= lun <= len(self.lun_sizes_mib):
            raise ValueError(f"the target has LUNs 1 to {len(self.lun_sizes_mib)}")
        return self.base / "luns" / f"lun{lun}.img"

    # -- up and down ---------------------------------------------------------------------------
    def up(self, timeout: float = 30) -> None:
        """Start the servers on the slot's bridge (which must exist: the test bed is up) and
        wait (bounded) until NFS and iSCSI are served."""
        if not Path(f"/sys/class/net/{self.bridge}").exists():
            raise HostError(f"bridge {self.bridge} is missing: bring the test bed of slot "
                            f"{self.slot} up first")  # fmt: skip
        self.down()
        self._prepare()
        _run("ip", "netns", "add", self.netns)
        try:
            _run("ip", "link", "add", self.veth, "type", "veth", "peer", "name", "eth0",
                 "netns", self.netns)  # fmt: skip
            _run("ip", "link", "set", self.veth, "master", self.bridge, "up")
            _run("ip", "-n", self.netns, "addr", "add", f"{self.address}/24", "dev", "eth0")
            _run("ip", "-n", self.netns, "link", "set", "eth0", "up")
            self._init = self._start_init(timeout)
            self._wait_ready(self._init, time.monotonic() + timeout)
        except BaseException:
            self.down()
            raise

    def down(self) -> None:
        """Kill every process of the namespace, delete it and ``BASE``; idempotent."""
        pids = _netns_pids(self.netns) if Path(f"/run/netns/{self.netns}").exists() else []
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._init is not None:  # our child (``ip netns exec`` → unshare): reap it
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._init.wait(timeout=5)
            self._init = None
        if Path(f"/run/netns/{self.netns}").exists():
            _run("ip", "netns", "del", self.netns, check=False)
        if Path(f"/sys/class/net/{self.veth}").exists():
            _run("ip", "link", "del", self.veth, check=False)
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> StorageServer:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    # -- inside --------------------------------------------------------------------------------
    def _prepare(self) -> None:
        for sub in ("run", "nfs-state", "export", "luns"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        for lun, size in enumerate(self.lun_sizes_mib, start=1):
            with self.lun_file(lun).open("wb") as backing:
                backing.truncate(size * 2**20)
        (self.base / "ganesha.conf").write_text(
            GANESHA_CONF.format(path=self.export_dir, pseudo=EXPORT)
        )

    def _start_init(self, timeout: float) -> subprocess.Popen[bytes]:
        config = {
            "hostname": "storage",
            "binds": [
                [str(self.base / "run"), "/run"],
                [str(self.base / "nfs-state"), "/var/lib/nfs"],
            ],
            "ganesha_conf": str(self.base / "ganesha.conf"),
            "ganesha_log": str(self.base / "ganesha.log"),
            "iqn": self.iqn,
            "luns": [str(self.lun_file(n)) for n in range(1, len(self.lun_sizes_mib) + 1)],
            "ready": str(self.base / "ready"),
            "timeout_s": timeout,
        }
        init = Path(__file__).with_name("_storage_init.py").read_text()
        with (self.base / "init.log").open("wb") as log:
            argv = ["ip", "netns", "exec", self.netns,
                    "unshare", "--mount", "--uts", "--pid", "--fork", "--kill-child",
                    "--mount-proc", "--propagation", "private", "--",
                    sys.executable, "-I", "-c", init, json.dumps(config)]  # fmt: skip
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait_ready(self, init: subprocess.Popen[bytes], deadline: float) -> None:
        ready = self.base / "ready"
        while not ready.exists() and init.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if ready.exists():
            return
        log = (self.base / "init.log").read_text(errors="replace")[-2000:]
        if init.poll() is not None:  # PID 1 gave up and said why
            raise HostError(f"the test bed's storage server failed to start:\n{log}")
        raise OperationTimeout(f"the test bed's storage server was not ready in time:\n{log}")
