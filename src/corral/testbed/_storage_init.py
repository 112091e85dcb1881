"""PID 1 of the test bed's storage server (run as ``python -I -c`` with this file's text and a
JSON config; see :mod:`corral.testbed.storage_server`).

It mounts private directories over ``/run`` and ``/var/lib/nfs`` (pid files, rpcbind's and
statd's state, ganesha's recovery directory: nothing clashes with the machine's), starts
``rpcbind``, ``rpc.statd`` (NLM's peer: ganesha asks it to monitor lock holders), ``nfs-ganesha``
and ``tgtd``, creates the iSCSI target with its LUNs through ``tgtadm``, waits (bounded) until
ganesha registered NFS and mountd with rpcbind, writes a ready marker, then reaps orphans until
it is killed, which ends every process of its PID namespace. A failed step prints why and exits:
the test bed reports this output (``init.log``).
"""

import json
import os
import pwd
import socket
import subprocess
import sys
import time
from collections.abc import Callable

config = json.loads(sys.argv[1])
deadline = time.monotonic() + config["timeout_s"]


def run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        sys.exit(f"storage server: {' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout


def wait_for(what: str, probe: Callable[[], bool]) -> None:
    while not probe():
        if time.monotonic() > deadline:
            sys.exit(f"storage server: {what} did not happen in time")
        time.sleep(0.05)


def tgtd_answers() -> bool:
    done = subprocess.run(
        ["tgtadm", "--lld", "iscsi", "--op", "show", "--mode", "sys"], capture_output=True
    )
    return done.returncode == 0


def registered() -> bool:
    """Whether ganesha's NFS (100003) and mountd (100005) programs are known to rpcbind."""
    done = subprocess.run(["rpcinfo", "-p", "127.0.0.1"], capture_output=True, text=True)
    programs = {line.split()[0] for line in done.stdout.splitlines()[1:] if line.split()}
    return {"100003", "100005"} <= programs


socket.sethostname(config["hostname"])
for source, target in config["binds"]:
    run("mount", "--bind", source, target)
run("ip", "link", "set", "lo", "up")
statd = pwd.getpwnam("statd")
for directory in ("/run/rpcbind", "/run/ganesha", "/run/tgtd", "/var/lib/nfs/ganesha"):
    os.makedirs(directory, exist_ok=True)
for directory in ("/var/lib/nfs/sm", "/var/lib/nfs/sm.bak"):
    os.makedirs(directory, exist_ok=True)
    os.chown(directory, statd.pw_uid, statd.pw_gid)
run("rpcbind", "-w")
run("rpc.statd", "--no-notify")
run("ganesha.nfsd", "-f", config["ganesha_conf"], "-L", config["ganesha_log"],
    "-p", "/run/ganesha/ganesha.pid")  # fmt: skip
run("tgtd", "-p", "/run/tgtd.pid")
wait_for("tgtd's control socket", tgtd_answers)
iqn = config["iqn"]
tgt = ("tgtadm", "--lld", "iscsi", "--mode")
run(*tgt, "target", "--op", "new", "--tid", "1", "--targetname", iqn)
for lun, path in enumerate(config["luns"], start=1):
    run(*tgt, "logicalunit", "--op", "new", "--tid", "1", "--lun", str(lun),
        "--backing-store", path)  # fmt: skip
run(*tgt, "target", "--op", "bind", "--tid", "1", "--initiator-address", "ALL")
wait_for("ganesha's registration with rpcbind", registered)
with open(config["ready"], "w") as marker:
    marker.write(str(os.getpid()))
print("storage server ready", flush=True)
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.5)
