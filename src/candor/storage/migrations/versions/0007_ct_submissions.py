"""CA-side CT submission: final certificates queued for the logs whose SCTs they embed (RFC 6962 4.1).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ct_submissions",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("serial_id", sa.BigInteger(), nullable=False),
        sa.Column("log_id", sa.LargeBinary(32), nullable=False),
        sa.Column("log_description", sa.String(200), nullable=False),
        sa.Column("certificate_sha256", sa.String(64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("sct_timestamp", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ct_submissions")),
        sa.UniqueConstraint("serial_id", "log_id", name=op.f("uq_ct_submissions_serial_id_log_id")),
        sa.ForeignKeyConstraint(["serial_id"], ["serials.id"], name=op.f("fk_ct_submissions_serial_id_serials")),
    )
    op.create_index(
        "ix_ct_submissions_done_next_attempt_at", "ct_submissions", ["done", "next_attempt_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_ct_submissions_done_next_attempt_at", table_name="ct_submissions")
    op.drop_table("ct_submissions")
