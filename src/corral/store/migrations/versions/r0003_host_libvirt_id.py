"""Hosts remember which libvirt daemon they are, so one daemon is registered only once.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("libvirt_id", sa.String(1100), nullable=True))
        batch.create_unique_constraint("uq_hosts_libvirt_id", ["libvirt_id"])


def downgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.drop_constraint("uq_hosts_libvirt_id", type_="unique")
        batch.drop_column("libvirt_id")
