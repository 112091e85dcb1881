"""A VM's cloud-init settings (sealed), from which its seed ISO is made.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "vm_cloud_init",
        sa.Column("vm_uuid", sa.String(36), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("instance_id", sa.String(64), nullable=False),
        sa.Column("user_data_digest", sa.String(64), nullable=True),
        sa.Column("user_data_size", sa.Integer(), nullable=True),
        sa.Column("set_by", sa.String(63), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("vm_uuid", name=op.f("pk_vm_cloud_init")),
    )


def downgrade() -> None:
    op.drop_table("vm_cloud_init")
