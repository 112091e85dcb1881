"""Engine setup, migrations, sessions and time zones."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import DBAPIError, StatementError

from corral.errors import InvalidRequest, NotFound
from corral.model.task import TaskState
from corral.store import (
    Base,
    Store,
    Task,
    add_host,
    add_vm,
    alembic_config,
    create_task,
    get_host,
    get_vm,
    list_hosts,
    make_engine,
    mark_vm_missing,
    upgrade,
)

TABLES = {
    "users",
    "console_tickets",
    "login_failures",
    "events",
    "shared_secrets",
    "api_tokens",
    "web_sessions",
    "hosts",
    "vms",
    "tasks",
    "audit_log",
    "cluster_settings",
    "storage_domains",
    "storage_domain_hosts",
    "host_power",
    "host_samples",
    "vm_samples",
    "networks",
    "network_hosts",
    "host_nic_labels",
    "instances",
    "leases",
    "operation_locks",
    "ha_definitions",
    "templates",
    "vm_cloud_init",
    "backup_stores",
    "alembic_version",
}


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def test_upgrade_from_empty_creates_every_table(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert set(inspect(engine).get_table_names()) == set()
        upgrade(engine)
        assert set(inspect(engine).get_table_names()) == TABLES
        with engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == _head()
        upgrade(engine)  # at head already: a no-op, not an error
    finally:
        engine.dispose()


def test_upgrade_accepts_a_url(db_url: str) -> None:
    upgrade(db_url)
    engine = make_engine(db_url)
    try:
        assert "vms" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_migrations_match_the_orm_metadata(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_downgrade_to_base_and_back(engine: Engine) -> None:
    from alembic import command

    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    upgrade(engine)
    assert set(inspect(engine).get_table_names()) == TABLES


def test_session_commits_on_success_and_rolls_back_on_error(store: Store) -> None:
    with store.session() as s:
        add_host(s, "kept", "qemu:///system")
    with pytest.raises(RuntimeError), store.session() as s:
        add_host(s, "dropped", "qemu:///system")
        raise RuntimeError("boom")
    with store.session() as s:
        assert get_host(s, "kept").uri == "qemu:///system"
        with pytest.raises(NotFound):
            get_host(s, "dropped")


def test_objects_stay_readable_after_the_session(store: Store) -> None:
    with store.session() as s:
        add_host(s, "h1", "qemu:///system")
        add_vm(
            s, uuid="11111111-2222-3333-4444-555555555555", name="vm1", host="h1", created_by="a"
        )
    with store.session() as s:
        vm = get_vm(s, "vm1")
    assert (vm.name, vm.host.name) == ("vm1", "h1")


def test_aware_datetimes_round_trip_as_utc(store: Store, engine: Engine) -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    since = datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=ist)
    with store.session() as s:
        add_host(s, "h1", "qemu:///system")
        add_vm(
            s, uuid="11111111-2222-3333-4444-555555555555", name="vm1", host="h1", created_by="a"
        )
        mark_vm_missing(s, "vm1", since=since)
    with store.session() as s:
        if engine.dialect.name == "postgresql":
            # The server would hand back values in this zone; the store must still give UTC.
            s.execute(text("SET TIME ZONE 'America/New_York'"))
        vm = get_vm(s, "vm1")
    assert vm.missing_since == since
    assert vm.missing_since is not None and vm.missing_since.tzinfo is UTC
    assert vm.missing_since.hour == 6 and vm.missing_since.minute == 30
    assert vm.created_at.tzinfo is UTC


def test_naive_datetimes_are_refused(store: Store) -> None:
    with store.session() as s:
        add_host(s, "h1", "qemu:///system")
        add_vm(
            s, uuid="11111111-2222-3333-4444-555555555555", name="vm1", host="h1", created_by="a"
        )
    with pytest.raises(StatementError, match="naive datetime"), store.session() as s:
        mark_vm_missing(s, "vm1", since=datetime(2024, 3, 1, 12, 0))


def test_order_by_time_is_time_order_across_offsets(store: Store) -> None:
    # 10:00+05:00 is earlier than 06:00Z; a store keeping local text would sort them wrongly.
    early = datetime(2024, 1, 1, 10, 0, tzinfo=timezone(timedelta(hours=5)))
    late = datetime(2024, 1, 1, 6, 0, tzinfo=UTC)
    with store.session() as s:
        for when, kind in ((late, "late"), (early, "early")):
            info = create_task(s, kind=kind, target="t", created_by="a")
            task = s.get(Task, info.id)
            assert task is not None
            task.created_at = when
    with store.session() as s:
        kinds = list(s.scalars(select(Task.kind).order_by(Task.created_at)))
    assert kinds == ["early", "late"]


def test_sqlite_pragmas(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 'corral.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    finally:
        engine.dispose()
    assert (tmp_path / "sub" / "corral.db-wal").exists() or (
        tmp_path / "sub" / "corral.db"
    ).exists()


def test_plain_postgresql_url_uses_psycopg3() -> None:
    engine = make_engine("postgresql://u:p@127.0.0.1:1/db")
    try:
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()


def test_two_sqlite_writers_do_not_hit_database_is_locked(tmp_path: Path) -> None:
    """Read-modify-write from two threads at once: no "database is locked", no lost update."""
    store = Store.from_url(f"sqlite:///{tmp_path / 'corral.db'}")
    rounds = 100
    with store.session() as s:
        task_id = create_task(s, kind="count", target="t", created_by="a").id
    barrier = threading.Barrier(2, timeout=10)

    def writer() -> None:
        barrier.wait()
        for _ in range(rounds):
            with store.session() as s:
                task = s.get(Task, task_id)
                assert task is not None
                task.bytes_done = (task.bytes_done or 0) + 1

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [pool.submit(writer) for _ in range(2)]
            for future in futures:
                future.result(timeout=60)  # re-raises a writer's "database is locked"
        with store.session() as s:
            task = s.get(Task, task_id)
            assert task is not None and task.bytes_done == 2 * rounds
            assert task.state == TaskState.PENDING.value
    finally:
        store.dispose()


def test_in_memory_sqlite_is_refused_with_advice() -> None:
    for url in ("sqlite://", "sqlite:///:memory:"):
        with pytest.raises(InvalidRequest, match="use a file"):
            make_engine(url)


def test_a_reading_session_reads_and_refuses_writes(store: Store) -> None:
    with store.session() as s:
        add_host(s, name="h1", uri="test:///default")
    with store.reading() as s:
        assert get_host(s, "h1").uri == "test:///default"
    with pytest.raises(DBAPIError, match=r"read-?only"), store.reading() as s:
        add_host(s, name="h2", uri="test:///default")
    with store.session() as s:  # the connection is back to writing for the next session
        add_host(s, name="h2", uri="test:///default")
        assert get_host(s, "h2").name == "h2"


def test_sqlite_reads_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    """A reading session takes no write lock: it reads while another connection holds it
    (a writer's BEGIN IMMEDIATE would wait, then fail with "database is locked")."""
    store = Store.from_url(f"sqlite:///{tmp_path / 'corral.db'}")
    with store.session() as s:
        add_host(s, name="h1", uri="test:///default")
    try:
        with store.session() as writer:
            add_host(writer, name="h2", uri="test:///default")
            with ThreadPoolExecutor(max_workers=1) as pool:

                def read() -> list[str]:
                    with store.reading() as s:
                        return [h.name for h in list_hosts(s)]

                # Uncommitted h2 is not seen; BEGIN IMMEDIATE would fail "locked" after 5 s.
                assert pool.submit(read).result(timeout=30) == ["h1"]
    finally:
        store.dispose()
