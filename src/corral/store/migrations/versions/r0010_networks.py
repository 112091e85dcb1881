"""Cluster networks, their state on each host, and labels on host NICs.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "networks",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("uplink", sa.String(32), nullable=True),
        sa.Column("vni", sa.Integer(), nullable=True),
        sa.Column("vlan", sa.Integer(), nullable=True),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('nat', 'isolated', 'bridge', 'vxlan')", name="ck_networks_kind"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_networks"),
        sa.UniqueConstraint("name", name="uq_networks_name"),
        sa.UniqueConstraint("vni", name="uq_networks_vni"),
    )
    op.create_table(
        "network_hosts",
        sa.Column("network_id", sa.String(32), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'applied', 'failed', 'drifted')", name="ck_network_hosts_state"
        ),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["networks.id"],
            name="fk_network_hosts_network_id_networks",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["host_id"], ["hosts.id"], name="fk_network_hosts_host_id_hosts", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("network_id", "host_id", name="pk_network_hosts"),
    )
    op.create_table(
        "host_nic_labels",
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(32), nullable=False),
        sa.Column("nic", sa.String(15), nullable=False),
        sa.ForeignKeyConstraint(
            ["host_id"], ["hosts.id"], name="fk_host_nic_labels_host_id_hosts", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("host_id", "label", name="pk_host_nic_labels"),
    )


def downgrade() -> None:
    op.drop_table("host_nic_labels")
    op.drop_table("network_hosts")
    op.drop_table("networks")
