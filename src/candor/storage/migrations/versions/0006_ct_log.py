"""Certificate Transparency log (RFC 6962): logs, entries, issuers, tree tiles and signed tree heads.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ct_logs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("log_id", sa.LargeBinary(32), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ct_logs")),
        sa.UniqueConstraint("name", name=op.f("uq_ct_logs_name")),
        sa.UniqueConstraint("log_id", name=op.f("uq_ct_logs_log_id")),
        sa.ForeignKeyConstraint(["key_id"], ["keys.id"], name=op.f("fk_ct_logs_key_id_keys")),
    )
    op.create_table(
        "ct_issuers",
        sa.Column("fingerprint", sa.LargeBinary(32), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_ct_issuers")),
    )
    op.create_table(
        "ct_entries",
        sa.Column("ct_log_id", sa.Integer(), nullable=False),
        sa.Column("leaf_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("identity_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("entry_type", sa.SmallInteger(), nullable=False),
        sa.Column("leaf_input", sa.LargeBinary(), nullable=False),
        sa.Column("precertificate", sa.LargeBinary(), nullable=True),
        sa.Column("chain", sa.LargeBinary(), nullable=False),
        sa.Column("sct_signature", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("ct_log_id", "leaf_index", name=op.f("pk_ct_entries")),
        sa.UniqueConstraint("ct_log_id", "identity_hash", name=op.f("uq_ct_entries_ct_log_id_identity_hash")),
        sa.ForeignKeyConstraint(["ct_log_id"], ["ct_logs.id"], name=op.f("fk_ct_entries_ct_log_id_ct_logs")),
    )
    op.create_index("ix_ct_entries_ct_log_id_leaf_hash", "ct_entries", ["ct_log_id", "leaf_hash"], unique=False)
    op.create_table(
        "ct_tiles",
        sa.Column("ct_log_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tile_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hashes", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("ct_log_id", "level", "tile_index", name=op.f("pk_ct_tiles")),
        sa.ForeignKeyConstraint(["ct_log_id"], ["ct_logs.id"], name=op.f("fk_ct_tiles_ct_log_id_ct_logs")),
    )
    op.create_table(
        "ct_tree_heads",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("ct_log_id", sa.Integer(), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ct_tree_heads")),
        sa.ForeignKeyConstraint(["ct_log_id"], ["ct_logs.id"], name=op.f("fk_ct_tree_heads_ct_log_id_ct_logs")),
    )
    op.create_index("ix_ct_tree_heads_ct_log_id_tree_size", "ct_tree_heads", ["ct_log_id", "tree_size"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_ct_tree_heads_ct_log_id_tree_size", table_name="ct_tree_heads")
    op.drop_table("ct_tree_heads")
    op.drop_table("ct_tiles")
    op.drop_index("ix_ct_entries_ct_log_id_leaf_hash", table_name="ct_entries")
    op.drop_table("ct_entries")
    op.drop_table("ct_issuers")
    op.drop_table("ct_logs")
