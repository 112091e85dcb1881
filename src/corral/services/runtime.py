"""Wires the services together for one manager process."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import timedelta

from corral.config import Settings
from corral.model.task import TaskInfo, TaskState
from corral.pki import ClusterPki
from corral.services._db import Db
from corral.services.audit import AuditService
from corral.services.auth import AuthService
from corral.services.backups.service import BackupService
from corral.services.cluster import ClusterSettingsService
from corral.services.cluster_view import ClusterView
from corral.services.console_tickets import ConsoleTickets
from corral.services.event_bridge import PgEventBridge
from corral.services.events import EventBus
from corral.services.ha.services import HaServices
from corral.services.host_agents import HostAgents
from corral.services.host_paths import HostPathRule
from corral.services.hosts import CertRotation, HostEnrollment, HostService, HostUriPolicy
from corral.services.images import ImageLibrary
from corral.services.instance import InstanceService
from corral.services.leases import Leases
from corral.services.locks import OperationLocks
from corral.services.metrics_refresh import MetricsRefresher
from corral.services.migrations import MIGRATE_KIND, MigrationServices
from corral.services.migrations.evacuate import KIND as EVACUATE_KIND
from corral.services.networks import HostNics, NetworkRealiser, NetworkService
from corral.services.networks.service import APPLY_KIND
from corral.services.power import APPLY_KIND as POWER_APPLY_KIND
from corral.services.power import PowerServices
from corral.services.power.host_power import OFF_KIND as POWER_OFF_KIND
from corral.services.power.host_power import ON_KIND as POWER_ON_KIND
from corral.services.power.secrets import SecretBox
from corral.services.reconcile import Reconciler
from corral.services.recovery import CreateRecovery, UploadRecovery
from corral.services.shared_secrets import check_shared_secrets, refuse_missing_secrets
from corral.services.sqlite_guard import SqliteGuard
from corral.services.storage import DomainVolumes, DriverContext, StorageDomains
from corral.services.stream_caps import ConsoleCaps, OpenStreams, per_user_cap
from corral.services.task_leases import TaskLeases
from corral.services.tasks import INTERRUPTED, Resume, TaskService
from corral.services.templates import TASK_KIND as TEMPLATE_VM_KIND
from corral.services.templates import Templates
from corral.services.vms import VmServices
from corral.services.vms.move_disk import KIND as MOVE_KIND
from corral.services.volumes import VolumeService
from corral.store import SessionPolicy, Store
from corral.virt.transports import load_transports

log = logging.getLogger(__name__)


class Services:
    """Everything the API layer may call. ``start()`` connects hosts and reconciles."""

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self.store = store or Store.from_url(settings.effective_database_url)
        self.db = Db(self.store)
        self.bus = EventBus()
        self.instance = InstanceService(self.db)
        #: Several instances on PostgreSQL: events between them, and the log SSE clients
        #: reconnect from (on SQLite, one instance: the bus's ring in memory).
        self.event_bridge = (
            PgEventBridge(self.db, self.bus, self.instance.identity.id)
            if self.store.engine.dialect.name == "postgresql"
            else None
        )
        self.audit = AuditService(self.db)
        self.auth = AuthService(
            self.db,
            self.bus,
            SessionPolicy(
                idle=timedelta(minutes=settings.session_idle_minutes),
                absolute=timedelta(hours=settings.session_max_hours),
            ),
            login_token_days=settings.api_login_token_days,
        )
        self._sqlite_guard = SqliteGuard(
            settings.effective_database_url, str(self.instance.identity)
        )
        self.tasks = TaskService(self.db, self.bus, self.instance.identity.id)
        self.task_leases = TaskLeases(self.db, self.tasks)
        self.leases = Leases(self.db, self.instance.identity.id)
        self.locks = OperationLocks(self.db, self.instance.identity.id)
        caps = ConsoleCaps(
            per_user=settings.console_max_per_user,
            per_vm=settings.console_max_per_vm,
            writer_reserve=settings.console_writer_reserve,
        )
        self.console_tickets = ConsoleTickets(
            self.db, dataclasses.replace(caps, per_user=settings.console_max_tickets_per_user)
        )
        #: Open consoles (VNC and serial), counted from the accepted socket on.
        self.consoles = OpenStreams(
            lambda held, new: caps.check(
                held, new, "open console", "close one (another tab or window?), then try again"
            )
        )
        self.event_streams = OpenStreams(
            per_user_cap(settings.event_streams_max_per_user, "event stream")
        )
        self.cluster = ClusterSettingsService(self.db, self.audit)
        # Hosts report events to the reconciler, which reads hosts: a forwarding lambda breaks
        # the construction cycle.
        self.pki = ClusterPki(settings.data_dir)
        self.hosts = HostService(
            self.db,
            settings.pool_dir,
            lambda e: self.reconciler.on_event(e),
            self.pki,
            HostUriPolicy(
                self.pki.libvirt_pkipath,
                settings.data_dir / "ssh",
                settings.allow_test_hosts,
                settings.simulated_hosts_dir,
            ),
        )
        self.agents = HostAgents(
            self.db, settings.data_dir / "ssh" / "known_hosts", settings.data_dir / "host-agent"
        )
        self.enrollment = HostEnrollment(
            self.db, self.hosts, self.pki, self.tasks, self.audit, settings.data_dir, self.cluster
        )
        self.enrollment.agents = self.agents
        self.cert_rotation = CertRotation(
            self.db, self.hosts, self.pki, self.tasks, self.audit, settings.data_dir, self.cluster
        )
        #: Runtime records of every connected host's domains, read instead of asking libvirt
        #: for all of them (placement, the VM state filter).
        self.view = ClusterView(self.hosts)
        self.reconciler = Reconciler(
            self.db, self.hosts, self.bus, self.locks, settings.reconcile_interval_s, self.view
        )
        self.storage = StorageDomains(
            self.db,
            self.hosts,
            DriverContext(agent=self.agents.call, agent_stream=self.agents.open_stream),
        )
        self.images = ImageLibrary(self.hosts, self.tasks, self.audit, self.storage)
        self.volumes = VolumeService(self.hosts)
        self.hosts.on_connected.append(self.storage.check_host)
        self.storage_volumes = DomainVolumes(self.storage, self.hosts)
        self.host_paths = HostPathRule(settings.host_path_roots, [settings.pool_dir])
        self.vms = VmServices.build(
            self.db,
            self.hosts,
            self.tasks,
            self.audit,
            self.locks,
            self.pki,
            self.images,
            self.host_paths,
            self.storage,
            self.agents.call,
            self.view,
            self.bus,
        )
        self.templates = Templates(self.vms.inventory, self.tasks, self.audit, self.locks)
        self.templates.images = self.images
        self.backups = BackupService(self.vms.inventory, self.tasks, self.audit, self.locks)
        self.backups.secrets = SecretBox(settings.data_dir)
        self.images.templates_using = self.templates.using_volume
        self.migrations = MigrationServices.build(
            self.vms.inventory,
            self.tasks,
            self.audit,
            self.locks,
            load_transports(settings.migration_transports),
            self.cluster,
            settings.data_dir,
        )
        self.power = PowerServices.build(
            settings,
            self.db,
            self.hosts,
            self.vms.inventory,
            self.tasks,
            self.audit,
            self.bus,
            self.cluster,
            self.migrations.migrate,
            settings.data_dir,
        )
        self.networks = NetworkService(
            self.db,
            self.hosts,
            self.tasks,
            self.audit,
            self.vms.inventory,
            NetworkRealiser(self.db, self.hosts, self.agents.call),
        )
        self.nics = HostNics(self.db, self.hosts)
        self.nics.changed = self.networks.apply_soon
        self.reconciler.on_host_connected.append(self.networks.on_host_connected)
        self.metrics = MetricsRefresher(self.vms.inventory, self.hosts, settings.metrics_interval_s)
        # `vm create` without a host asks the placement policy.
        self.vms.create.choose_host = self.power.placement.choose
        self.vms.create.network_gaps = self.networks.lacking
        self.vms.devices.not_applied = self.networks.not_applied
        self.migrations.migrate.preflight.network_gaps = self.networks.lacking
        self.migrations.migrate.preflight.storage = self.storage
        self.ha = HaServices.build(
            self.db,
            self.hosts,
            self.vms.inventory,
            self.storage,
            self.audit,
            self.bus,
            self.power.config,
            settings,
            self.agents,
        )
        self.ha.restart.network_gaps = self.networks.lacking

    async def start(self) -> None:
        s = self.settings
        if self.event_bridge is not None:
            await self.event_bridge.start()
        await refuse_missing_secrets(self.db, s.data_dir)
        # The cluster's CAs and Corral's own certificates: made on first start, renewed in
        # their last 30 days.
        for done in await asyncio.to_thread(self.pki.ensure):
            log.info("PKI: %s", done)
        # Before anything runs: a second instance on one SQLite file stops here.
        self._sqlite_guard.acquire()
        # An instance with keys of its own would issue certificates the hosts reject.
        await check_shared_secrets(self.db, s.data_dir, str(self.instance.identity))
        await self.instance.start()
        sole = self.store.engine.dialect.name == "sqlite"
        await self.locks.start(sole=sole)
        await self.hosts.start(s.local_host_name, s.local_host_uri, s.local_host_accelerator)
        self._register_resumers()
        self._share_jobs()
        if sole:
            await self.task_leases.claim_all_at_start()
        else:
            await self.task_leases.claim()
        self.task_leases.start(sole=sole)
        if not sole:
            self.hosts.follow_others()
        await self.reconciler.reconcile_all()
        self.leases.start()
        self.reconciler.start()
        self.networks.start(s.reconcile_interval_s)
        await self.power.start()
        self.metrics.start()
        self.ha.monitor.start()

    def _register_resumers(self) -> None:
        """How this instance takes over each kind of task another one left unfinished."""
        tasks = self.tasks

        def when_running(resume: Resume) -> Resume:
            # A migration or move that had not started yet did nothing to resume.
            async def run(task: TaskInfo) -> None:
                if task.state is TaskState.RUNNING:
                    await resume(task)
                else:
                    await tasks.fail(task, INTERRUPTED)

            return run

        tasks.register_resumer(MIGRATE_KIND, when_running(self.migrations.resume))
        tasks.register_resumer(MOVE_KIND, when_running(self.vms.move_disk.resume))
        made = CreateRecovery(self.db, tasks, self.hosts)
        tasks.register_resumer("vm.create", made.resume)
        tasks.register_resumer("vm.clone", made.resume)
        tasks.register_resumer(TEMPLATE_VM_KIND, made.resume)
        for kind in ("network.create", "network.edit", APPLY_KIND, "network.delete"):
            tasks.register_resumer(kind, self.networks.resume_apply)
        tasks.register_resumer("image.upload", UploadRecovery(tasks, self.hosts).resume)
        tasks.register_resumer("vm.shutdown", self.vms.power.resume_shutdown)
        # Host and power work: each resolved from the host's real state, never done twice.
        tasks.register_resumer(EVACUATE_KIND, self.migrations.evacuate.resume)
        tasks.register_resumer("host.enroll", self.enrollment.resume)
        tasks.register_resumer("host.rotate-certs", self.cert_rotation.resume)
        tasks.register_resumer(POWER_APPLY_KIND, self.power.apply.resume)
        tasks.register_resumer(POWER_ON_KIND, self.power.hosts.resume_on)
        tasks.register_resumer(POWER_OFF_KIND, self.power.hosts.resume_off)

    def _share_jobs(self) -> None:
        """Jobs that must run once in the cluster act only where their lease is held."""
        self.reconciler.leases = self.leases
        self.networks.leases = self.leases
        self.power.sampler.leases = self.leases
        self.ha.monitor.leases = self.leases

    async def stop(self) -> None:
        await self.task_leases.stop()
        await self.ha.monitor.stop()
        await self.metrics.stop()
        await self.networks.stop()
        await self.power.stop()
        await self.tasks.shutdown()
        await self.reconciler.stop()
        await self.hosts.stop()
        await self.leases.stop()
        await self.locks.stop()
        if self.event_bridge is not None:
            await self.event_bridge.stop()
        await self.instance.stop()
        self.store.dispose()
        self._sqlite_guard.release()
