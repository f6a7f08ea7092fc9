"""The time-stamping authority: ``tsa_units`` (keys with their Timestamp certificates) and ``tsa_tokens``
(every token issued, RFC 3161 2.4.2 serials unique across the TSA).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tsa_units",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("issuer_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("certificate_id", sa.BigInteger(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("usable_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signs_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tsa_units")),
        sa.UniqueConstraint("name", name=op.f("uq_tsa_units_name")),
        sa.UniqueConstraint("key_id", name=op.f("uq_tsa_units_key_id")),
        sa.UniqueConstraint("certificate_id", name=op.f("uq_tsa_units_certificate_id")),
        sa.CheckConstraint("status IN ('active', 'retired')", name=op.f("ck_tsa_units_status")),
        sa.CheckConstraint("usable_until <= not_after", name=op.f("ck_tsa_units_usable_within_validity")),
        sa.CheckConstraint(
            "signs_from >= not_before AND signs_from < usable_until", name=op.f("ck_tsa_units_signs_within_usage")
        ),
        sa.ForeignKeyConstraint(["issuer_id"], ["issuers.id"], name=op.f("fk_tsa_units_issuer_id_issuers")),
        sa.ForeignKeyConstraint(["key_id"], ["keys.id"], name=op.f("fk_tsa_units_key_id_keys")),
        sa.ForeignKeyConstraint(
            ["certificate_id"], ["certificates.id"], name=op.f("fk_tsa_units_certificate_id_certificates")
        ),
    )
    op.create_table(
        "tsa_tokens",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("serial_hex", sa.String(40), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("policy", sa.String(128), nullable=False),
        sa.Column("imprint_algorithm", sa.String(64), nullable=False),
        sa.Column("imprint", sa.LargeBinary(64), nullable=False),
        sa.Column("gen_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tsa_tokens")),
        sa.UniqueConstraint("serial_hex", name=op.f("uq_tsa_tokens_serial_hex")),
        sa.ForeignKeyConstraint(["unit_id"], ["tsa_units.id"], name=op.f("fk_tsa_tokens_unit_id_tsa_units")),
    )


def downgrade() -> None:
    op.drop_table("tsa_tokens")
    op.drop_table("tsa_units")
