"""Pre-signed OCSP responses: ``ocsp_responses`` (RFC 6960 2.5, RFC 5019), one per issued serial.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ocsp_responses",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("serial_id", sa.BigInteger(), nullable=False),
        sa.Column("issuer_key_sha1", sa.LargeBinary(20), nullable=False),
        sa.Column("serial_hex", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("revocation_reason", sa.Integer(), nullable=True),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("this_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refresh_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("responder_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ocsp_responses")),
        sa.UniqueConstraint("serial_id", name=op.f("uq_ocsp_responses_serial_id")),
        sa.UniqueConstraint("issuer_key_sha1", "serial_hex", name=op.f("uq_ocsp_responses_issuer_key_sha1_serial_hex")),
        sa.CheckConstraint("status IN ('good', 'revoked')", name=op.f("ck_ocsp_responses_status")),
        sa.ForeignKeyConstraint(["serial_id"], ["serials.id"], name=op.f("fk_ocsp_responses_serial_id_serials")),
        sa.ForeignKeyConstraint(
            ["responder_id"], ["ocsp_responders.id"], name=op.f("fk_ocsp_responses_responder_id_ocsp_responders")
        ),
    )
    op.create_index("ix_ocsp_responses_refresh_at", "ocsp_responses", ["refresh_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_ocsp_responses_refresh_at", table_name="ocsp_responses")
    op.drop_table("ocsp_responses")
