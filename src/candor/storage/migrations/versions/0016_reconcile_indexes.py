"""Indexes for the signer's start-up reconcile (``Signer.reconcile``), which read two whole tables at every start of
``candor serve`` and ``candor issue``: the unfinished issuances by state (every issuance ever, its TBSCertificates
included), and the orders claimed but never started by status and age (every order ever).

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_issuances_state", "issuances", ["state"])
    op.create_index("ix_orders_status_updated", "orders", ["status", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_orders_status_updated", table_name="orders")
    op.drop_index("ix_issuances_state", table_name="issuances")
