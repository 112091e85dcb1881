"""The host agent: a small program Corral runs ON a host, as root, for host-side work libvirt
cannot do (Linux bridges and VXLAN for cluster networks; later NFS volume work).

It is **stdlib-only Python 3.11** (Debian hosts have ``python3``) and imports nothing else from
Corral: the manager ships this package as one zip (``hostsetup/agent.py``) and runs it over the
host's recorded SSH access, or as a local subprocess on the manager's own host.

Protocol (versioned: ``version`` is a digest of this package's sources): one JSON request on
stdin ``{"op": NAME, "args": {...}}``, one JSON reply on stdout
``{"agent": VERSION, "ok": true, "result": {...}}`` or ``{"agent": VERSION, "ok": false,
"error": SENTENCE}``; exit status 0 whenever a reply was written. Nothing secret ever travels on
a command line.

* :mod:`.protocol`  the version digest, requests and replies, ``AgentError``
* :mod:`.main`      the entry point: read, dispatch, reply (and the rollback timer's entry)
* :mod:`.ops`       the table of operations
* :mod:`.iproute`   ``ip``/``bridge`` (iproute2) with JSON output
* :mod:`.netspec`   ``net.apply``'s arguments, checked
* :mod:`.netstore`  the agent's state on the host: managed links, pending change, history, lock
* :mod:`.netapply`  bringing the managed links from one state to another
* :mod:`.netops`    ``net.state``, ``net.apply``, ``net.confirm`` and the rollback timer
* :mod:`.nfsops`    ``nfs.*``: an nfs storage domain's reach and volumes (QEMU's NFS client)
* :mod:`.haops`     ``ha.beat``: the storage heartbeat and self-fence; ``ha.beats``
* :mod:`.libnfs`    libnfs through ctypes (mount, list, stat, statvfs, mkdir/rmdir, unlink)
"""
