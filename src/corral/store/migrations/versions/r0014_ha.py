"""High availability: a VM's HA priority, a host's HA state, saved definitions of HA VMs.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("ha_state", sa.String(16), nullable=False, server_default="ok"))
        batch.add_column(sa.Column("ha_reason", sa.Text(), nullable=False, server_default=""))
        batch.add_column(sa.Column("ha_since", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("vms") as batch:
        batch.add_column(sa.Column("ha_priority", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("ha_waiting", sa.Text(), nullable=True))
    op.create_table(
        "ha_definitions",
        sa.Column("vm_uuid", sa.String(36), nullable=False),
        sa.Column("xml", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("vm_uuid", name="pk_ha_definitions"),
    )


def downgrade() -> None:
    op.drop_table("ha_definitions")
    with op.batch_alter_table("vms") as batch:
        batch.drop_column("ha_waiting")
        batch.drop_column("ha_priority")
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("ha_since")
        batch.drop_column("ha_reason")
        batch.drop_column("ha_state")
