"""Backup stores: a directory on the manager's machine (or a mount every instance shares),
with its encryption key sealed (never shown).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "backup_stores",
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("path", sa.String(4096), nullable=False),
        sa.Column("key_sealed", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(63), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_backup_stores")),
        sa.UniqueConstraint("path", name=op.f("uq_backup_stores_path")),
    )


def downgrade() -> None:
    op.drop_table("backup_stores")
