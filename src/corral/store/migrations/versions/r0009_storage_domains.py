"""Storage domains and each host's reach of them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "storage_domains",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("marker", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(63), nullable=False),
        sa.CheckConstraint(
            "kind IN ('shared-dir', 'nfs', 'iscsi')", name="ck_storage_domains_kind"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_storage_domains"),
        sa.UniqueConstraint("name", name="uq_storage_domains_name"),
    )
    op.create_table(
        "storage_domain_hosts",
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("capacity_bytes", sa.BigInteger(), nullable=True),
        sa.Column("free_bytes", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "state IN ('reachable', 'unreachable', 'unchecked')",
            name="ck_storage_domain_hosts_state",
        ),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["storage_domains.id"],
            name="fk_storage_domain_hosts_domain_id_storage_domains",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["host_id"],
            ["hosts.id"],
            name="fk_storage_domain_hosts_host_id_hosts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("domain_id", "host_id", name="pk_storage_domain_hosts"),
    )


def downgrade() -> None:
    op.drop_table("storage_domain_hosts")
    op.drop_table("storage_domains")
