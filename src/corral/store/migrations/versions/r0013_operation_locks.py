"""Per-VM operation locks shared by every instance: one long operation per VM in the cluster.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "operation_locks",
        sa.Column("vm", sa.String(63), nullable=False),
        sa.Column("operation", sa.String(255), nullable=False),
        sa.Column("holder", sa.String(32), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("vm", name="pk_operation_locks"),
    )


def downgrade() -> None:
    op.drop_table("operation_locks")
