"""Persistence: SQLAlchemy 2 ORM over SQLite (WAL) or PostgreSQL, migrated by Alembic.

Every repository function takes an open :class:`~sqlalchemy.orm.Session` (from
``Store.session()``) and raises :class:`~corral.errors.NotFound` / :class:`~corral.errors.Conflict`.
Functions that return ORM objects (users, hosts, VMs, tokens on auth) hand back objects that stay
readable after the session ends; ``*_info`` functions turn them into ``corral.model`` types.
"""

from corral.store.audit import append_audit, audit_info, list_audit
from corral.store.db import Store, alembic_config, make_engine, upgrade
from corral.store.hosts import (
    add_host,
    already_registered,
    claim_libvirt_id,
    delete_host,
    find_host,
    find_host_by_libvirt_id,
    get_host,
    host_info,
    list_hosts,
)
from corral.store.tables import ApiToken, Base, Host, Task, User, Vm
from corral.store.tasks import (
    create_task,
    get_task,
    list_tasks,
    list_unfinished_tasks,
    task_info,
    update_task,
)
from corral.store.tokens import (
    authenticate_token,
    create_token,
    get_token,
    list_tokens,
    revoke_token,
    token_info,
)
from corral.store.users import (
    count_admins,
    create_user,
    delete_user,
    find_user,
    get_user,
    list_users,
    set_disabled,
    set_password,
    set_role,
    user_info,
)
from corral.store.vms import (
    UNSET,
    add_vm,
    clear_vm_missing,
    delete_vm,
    find_vm,
    find_vm_by_uuid,
    get_vm,
    get_vm_by_uuid,
    list_vms,
    mark_vm_missing,
    set_vm_started,
    update_vm,
)

__all__ = [
    "UNSET",
    "ApiToken",
    "Base",
    "Host",
    "Store",
    "Task",
    "User",
    "Vm",
    "add_host",
    "add_vm",
    "alembic_config",
    "already_registered",
    "append_audit",
    "audit_info",
    "authenticate_token",
    "claim_libvirt_id",
    "clear_vm_missing",
    "count_admins",
    "create_task",
    "create_token",
    "create_user",
    "delete_host",
    "delete_user",
    "delete_vm",
    "find_host",
    "find_host_by_libvirt_id",
    "find_user",
    "find_vm",
    "find_vm_by_uuid",
    "get_host",
    "get_task",
    "get_token",
    "get_user",
    "get_vm",
    "get_vm_by_uuid",
    "host_info",
    "list_audit",
    "list_hosts",
    "list_tasks",
    "list_tokens",
    "list_unfinished_tasks",
    "list_users",
    "list_vms",
    "make_engine",
    "mark_vm_missing",
    "revoke_token",
    "set_disabled",
    "set_password",
    "set_role",
    "set_vm_started",
    "task_info",
    "token_info",
    "update_task",
    "update_vm",
    "upgrade",
    "user_info",
]
