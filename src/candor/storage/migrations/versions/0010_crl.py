"""Sharded CRLs: ``crl_issuers`` (the CRLNumber counter and the fixed shard count) and ``crl_shards``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crl_issuers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer_id", sa.Integer(), nullable=False),
        sa.Column("shards", sa.Integer(), nullable=False),
        sa.Column("last_number", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["issuer_id"], ["issuers.id"], name=op.f("fk_crl_issuers_issuer_id_issuers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crl_issuers")),
        sa.UniqueConstraint("issuer_id", name=op.f("uq_crl_issuers_issuer_id")),
    )
    op.create_table(
        "crl_shards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer_id", sa.Integer(), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.Column("published_revision", sa.BigInteger(), nullable=True),
        sa.Column("number", sa.BigInteger(), nullable=True),
        sa.Column("this_update", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_update", sa.DateTime(timezone=True), nullable=True),
        sa.Column("entries", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["issuer_id"], ["issuers.id"], name=op.f("fk_crl_shards_issuer_id_issuers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crl_shards")),
        sa.UniqueConstraint("issuer_id", "shard", name=op.f("uq_crl_shards_issuer_id_shard")),
    )


def downgrade() -> None:
    op.drop_table("crl_shards")
    op.drop_table("crl_issuers")
