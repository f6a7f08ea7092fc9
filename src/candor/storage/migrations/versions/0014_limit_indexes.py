"""Indexes for the rate limits' counts, which ran on every newOrder and every challenge and read whole tables:

* ``orders (account_id, created_at)``: new orders per account in the window (it scanned every order of every
  account; it also serves the account's orders list);
* ``authorizations (account_id, status, expires_at)``: the account's pending authorizations (it read every
  authorization the account ever had);
* ``authorizations (identifier_value)``: failed validations per name, from the name's authorizations to their
  challenges (it scanned every challenge).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_orders_account_created", "orders", ["account_id", "created_at"])
    op.create_index("ix_authorizations_account_pending", "authorizations", ["account_id", "status", "expires_at"])
    op.create_index("ix_authorizations_identifier", "authorizations", ["identifier_value"])


def downgrade() -> None:
    op.drop_index("ix_authorizations_identifier", table_name="authorizations")
    op.drop_index("ix_authorizations_account_pending", table_name="authorizations")
    op.drop_index("ix_orders_account_created", table_name="orders")
