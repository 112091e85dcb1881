"""Power management: hosts in standby, host power drivers, utilisation samples.

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-29

0007 belongs to another branch (VM editing); whichever lands second moves its
``down_revision`` onto the other.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(
            sa.Column("standby", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "host_power",
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("driver", sa.String(16), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("model", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "driver IS NULL OR driver IN ('ipmi', 'wol', 'suspend', 'ssh')",
            name="ck_host_power_driver",
        ),
        sa.ForeignKeyConstraint(
            ["host_id"], ["hosts.id"], name="fk_host_power_host_id_hosts", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("host_id", name="pk_host_power"),
    )
    op.create_table(
        "host_samples",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("host", sa.String(63), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cpu", sa.Float(), nullable=False),
        sa.Column("memory_used_mib", sa.Integer(), nullable=False),
        sa.Column("memory_total_mib", sa.Integer(), nullable=False),
        sa.Column("standby", sa.Boolean(), nullable=False),
        sa.Column("minute", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_host_samples"),
    )
    op.create_index("ix_host_samples_host", "host_samples", ["host"])
    op.create_index("ix_host_samples_at", "host_samples", ["at"])
    op.create_table(
        "vm_samples",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("vm", sa.String(63), nullable=False),
        sa.Column("host", sa.String(63), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cpu", sa.Float(), nullable=False),
        sa.Column("memory_mib", sa.Integer(), nullable=False),
        sa.Column("minute", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_vm_samples"),
    )
    op.create_index("ix_vm_samples_vm", "vm_samples", ["vm"])
    op.create_index("ix_vm_samples_at", "vm_samples", ["at"])


def downgrade() -> None:
    op.drop_table("vm_samples")
    op.drop_table("host_samples")
    op.drop_table("host_power")
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("standby")
