"""An index on ``serials (revoked_at)``: the OCSP pre-signer's look for new revocations (the newest revocation
time; only revoked serials have one) reads it instead of every serial.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_serials_revoked_at", "serials", ["revoked_at"])


def downgrade() -> None:
    op.drop_index("ix_serials_revoked_at", table_name="serials")
