"""ACME: nonces, challenges, order-authorization links, and the account's JWK.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("jwk", sa.Text(), nullable=True))
    op.create_table(
        "nonces",
        sa.Column("value", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("value", name=op.f("pk_nonces")),
    )
    op.create_index("ix_nonces_expires_at", "nonces", ["expires_at"], unique=False)
    op.create_table(
        "challenges",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("authorization_id", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("validated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_challenges")),
        sa.ForeignKeyConstraint(
            ["authorization_id"], ["authorizations.id"], name=op.f("fk_challenges_authorization_id_authorizations")
        ),
        sa.UniqueConstraint("token", name=op.f("uq_challenges_token")),
        sa.CheckConstraint("type IN ('http-01', 'dns-01', 'tls-alpn-01')", name=op.f("ck_challenges_type")),
        sa.CheckConstraint(
            "status IN ('pending', 'processing', 'valid', 'invalid')", name=op.f("ck_challenges_status")
        ),
    )
    op.create_index("ix_challenges_authorization_id", "challenges", ["authorization_id"], unique=False)
    op.create_table(
        "order_authorizations",
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("authorization_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "authorization_id", name=op.f("pk_order_authorizations")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_order_authorizations_order_id_orders")),
        sa.ForeignKeyConstraint(
            ["authorization_id"],
            ["authorizations.id"],
            name=op.f("fk_order_authorizations_authorization_id_authorizations"),
        ),
    )


def downgrade() -> None:
    op.drop_table("order_authorizations")
    op.drop_table("challenges")
    op.drop_table("nonces")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("jwk")
