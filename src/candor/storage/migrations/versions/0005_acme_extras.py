"""ACME additions: when CAA was last checked for an authorization, the certificate an order replaces
(RFC 9773 ARI), and external account binding key identifiers (RFC 8555 7.3.4).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("authorizations") as batch:
        batch.add_column(sa.Column("caa_checked_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("replaces", sa.String(255), nullable=True))
        batch.create_index("ix_orders_replaces", ["replaces"], unique=False)
    op.create_table(
        "external_account_keys",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("kid", sa.String(64), nullable=False),
        sa.Column("label", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("bound_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_external_account_keys")),
        sa.UniqueConstraint("kid", name=op.f("uq_external_account_keys_kid")),
        sa.UniqueConstraint("account_id", name=op.f("uq_external_account_keys_account_id")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_external_account_keys_account_id_accounts")
        ),
        sa.CheckConstraint("status IN ('active', 'bound', 'revoked')", name=op.f("ck_external_account_keys_status")),
    )


def downgrade() -> None:
    op.drop_table("external_account_keys")
    with op.batch_alter_table("orders") as batch:
        batch.drop_index("ix_orders_replaces")
        batch.drop_column("replaces")
    with op.batch_alter_table("authorizations") as batch:
        batch.drop_column("caa_checked_at")
