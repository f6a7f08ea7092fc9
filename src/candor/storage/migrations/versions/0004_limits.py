"""Rate-limit facts: the address an account was created from, and the registered domains certificates name.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("created_ip", sa.String(45), nullable=True))
        batch.create_index("ix_accounts_created_ip", ["created_ip", "created_at"], unique=False)
    op.create_table(
        "issued_names",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("registered_domain", sa.String(253), nullable=False),
        sa.Column("issuance_id", sa.BigInteger(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issued_names")),
        sa.ForeignKeyConstraint(["issuance_id"], ["issuances.id"], name=op.f("fk_issued_names_issuance_id_issuances")),
    )
    op.create_index("ix_issued_names_domain_time", "issued_names", ["registered_domain", "issued_at"], unique=False)


def downgrade() -> None:
    op.drop_table("issued_names")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_index("ix_accounts_created_ip")
        batch.drop_column("created_ip")
