"""``candor ct audit``: the verified tree head per log, and which of Candor's certificates each log holds.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ct_audit_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("log_id", sa.LargeBinary(32), nullable=False),
        sa.Column("log_description", sa.String(200), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("compact_range", sa.LargeBinary(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ct_audit_state")),
        sa.UniqueConstraint("log_id", name=op.f("uq_ct_audit_state_log_id")),
    )
    op.create_table(
        "ct_audit_seen",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("log_id", sa.LargeBinary(32), nullable=False),
        sa.Column("certificate_id", sa.BigInteger(), nullable=False),
        sa.Column("leaf_index", sa.BigInteger(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ct_audit_seen")),
        sa.UniqueConstraint("log_id", "certificate_id", name=op.f("uq_ct_audit_seen_log_id_certificate_id")),
        sa.ForeignKeyConstraint(
            ["certificate_id"], ["certificates.id"], name=op.f("fk_ct_audit_seen_certificate_id_certificates")
        ),
    )


def downgrade() -> None:
    op.drop_table("ct_audit_seen")
    op.drop_table("ct_audit_state")
