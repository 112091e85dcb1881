"""PID 1 of a test-bed host (run as ``python -I -c`` with this file's text and a JSON config).

It names the host, mounts its private directories, starts ``virtlogd``, ``libvirtd`` (local
socket only: enrollment turns TLS on) and ``sshd``, writes a ready marker, then reaps orphans
(daemons re-parented to PID 1 would otherwise stay zombies) until it is killed, which ends
every process of the host's PID namespace.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

config = json.loads(sys.argv[1])
socket.sethostname(config["hostname"])
for kind, source, target in config["mounts"]:
    if kind == "overlay":
        upper, work = source
        options = f"lowerdir={target},upperdir={upper},workdir={work}"
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, target], check=True)
    else:
        subprocess.run(["mount", "--bind", source, target], check=True)
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
for directory in ("/run/libvirt", "/run/sshd", "/run/lock", "/var/log/libvirt/qemu"):
    os.makedirs(directory, exist_ok=True)
os.chmod("/run/sshd", 0o755)
for argv in config["daemons"]:
    subprocess.run(argv, check=True)
with open(config["ready"], "w") as marker:
    marker.write(str(os.getpid()))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.5)
