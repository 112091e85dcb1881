"""Hosts: enrollment (address, SSH access for certificate rotation) and maintenance mode.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(
            sa.Column("maintenance", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("address", sa.String(255), nullable=True))
        batch.add_column(sa.Column("ssh_destination", sa.String(300), nullable=True))
        batch.add_column(sa.Column("ssh_port", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("ssh_key_path", sa.String(1024), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        for column in ("ssh_key_path", "ssh_port", "ssh_destination", "address", "maintenance"):
            batch.drop_column(column)
