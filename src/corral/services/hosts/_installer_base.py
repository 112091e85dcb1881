"""What enrollment and certificate rotation both hold: the services they use, where SSH host
keys are pinned, the test checkpoint, and the hosts being worked on."""

from __future__ import annotations

from pathlib import Path

from corral.pki import ClusterPki
from corral.services._db import Db
from corral.services.audit import AuditService
from corral.services.cluster import ClusterSettingsService
from corral.services.hosts import _install
from corral.services.hosts.registry import HostService
from corral.services.tasks import TaskService


class HostInstallerBase:
    def __init__(
        self,
        db: Db,
        hosts: HostService,
        pki: ClusterPki,
        tasks: TaskService,
        audit: AuditService,
        data_dir: Path,
        cluster: ClusterSettingsService | None = None,
        checkpoint: _install.Checkpoint = _install.no_checkpoint,
    ) -> None:
        self._db = db
        self._hosts = hosts
        self._pki = pki
        self._tasks = tasks
        self._audit = audit
        self.known_hosts = data_dir / "ssh" / "known_hosts"
        self.checkpoint = checkpoint
        self._cluster = cluster
        #: Hosts with an enrollment or rotation under way (one at a time per host).
        self._busy: set[str] = set()
