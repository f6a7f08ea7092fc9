"""Issuance: accounts, authorizations, orders, issuance intents, blocked keys; issuer private flag and CRL shards.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("issuers") as batch:
        batch.add_column(sa.Column("private", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("crl_shards", sa.Integer(), nullable=False, server_default="16"))
    with op.batch_alter_table("certificates") as batch:
        batch.add_column(sa.Column("spki_sha256", sa.String(64), nullable=True))
        batch.create_index("ix_certificates_spki_sha256", ["spki_sha256"], unique=False)
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("label", sa.String(128), nullable=True),
        sa.Column("key_thumbprint", sa.String(64), nullable=True),
        sa.Column("contact", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("label", name=op.f("uq_accounts_label")),
        sa.UniqueConstraint("key_thumbprint", name=op.f("uq_accounts_key_thumbprint")),
        sa.CheckConstraint("kind IN ('acme', 'portal', 'operator')", name=op.f("ck_accounts_kind")),
        sa.CheckConstraint("status IN ('valid', 'deactivated', 'revoked')", name=op.f("ck_accounts_status")),
    )
    op.create_table(
        "authorizations",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("identifier_type", sa.String(8), nullable=False),
        sa.Column("identifier_value", sa.String(253), nullable=False),
        sa.Column("wildcard", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("method", sa.String(32), nullable=True),
        _ts("validated_at", nullable=True),
        _ts("expires_at"),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authorizations")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_authorizations_account_id_accounts")),
        sa.CheckConstraint("identifier_type IN ('dns', 'ip')", name=op.f("ck_authorizations_identifier_type")),
        sa.CheckConstraint(
            "status IN ('pending', 'valid', 'invalid', 'deactivated', 'expired', 'revoked')",
            name=op.f("ck_authorizations_status"),
        ),
        sa.CheckConstraint(
            "status <> 'valid' OR (method IS NOT NULL AND validated_at IS NOT NULL)",
            name=op.f("ck_authorizations_valid_has_proof"),
        ),
    )
    op.create_index(
        "ix_authorizations_account_identifier", "authorizations", ["account_id", "identifier_value"], unique=False
    )
    op.create_table(
        "orders",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("identifiers", sa.Text(), nullable=False),
        sa.Column("profile", sa.String(16), nullable=False),
        sa.Column("issuer_id", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("expires_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_orders_account_id_accounts")),
        sa.ForeignKeyConstraint(["issuer_id"], ["issuers.id"], name=op.f("fk_orders_issuer_id_issuers")),
        sa.CheckConstraint(
            "status IN ('pending', 'ready', 'processing', 'valid', 'invalid')", name=op.f("ck_orders_status")
        ),
    )
    op.create_table(
        "issuances",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("serial_id", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("profile", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("precert_tbs", sa.LargeBinary(), nullable=False),
        sa.Column("precert_tbs_sha256", sa.String(64), nullable=False),
        sa.Column("scts", sa.LargeBinary(), nullable=True),
        sa.Column("final_tbs", sa.LargeBinary(), nullable=True),
        sa.Column("final_tbs_sha256", sa.String(64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issuances")),
        sa.ForeignKeyConstraint(["serial_id"], ["serials.id"], name=op.f("fk_issuances_serial_id_serials")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_issuances_order_id_orders")),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_issuances_account_id_accounts")),
        sa.UniqueConstraint("serial_id", name=op.f("uq_issuances_serial_id")),
        sa.UniqueConstraint("order_id", name=op.f("uq_issuances_order_id")),
        sa.CheckConstraint(
            "state IN ('intent', 'precertificate', 'final-intent', 'complete', 'failed')",
            name=op.f("ck_issuances_state"),
        ),
    )
    op.create_table(
        "blocked_keys",
        sa.Column("spki_sha256", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("source", sa.String(256), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("spki_sha256", name=op.f("pk_blocked_keys")),
    )


def downgrade() -> None:
    for table in ("blocked_keys", "issuances", "orders", "authorizations", "accounts"):
        op.drop_table(table)
    with op.batch_alter_table("certificates") as batch:
        batch.drop_index("ix_certificates_spki_sha256")
        batch.drop_column("spki_sha256")
    with op.batch_alter_table("issuers") as batch:
        batch.drop_column("crl_shards")
        batch.drop_column("private")
