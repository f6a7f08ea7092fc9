"""Two more indexes for statements that read whole tables while serving:

* ``ocsp_responses (this_update)``: each non-primary worker of ``candor serve`` reads the responses signed since
  its last look, once a second (:func:`candor.revocation.ocsp.index.load_from_database`); without the index that
  read went through every stored response, DER included, every second;
* ``order_authorizations (authorization_id)``: after a challenge, the pending orders resting on its authorization
  are found by it (:func:`candor.storage.acme_views.refresh_orders`); the primary key leads with the order, so that
  read went through every order.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_ocsp_responses_this_update", "ocsp_responses", ["this_update"])
    op.create_index("ix_order_authorizations_authorization", "order_authorizations", ["authorization_id"])


def downgrade() -> None:
    op.drop_index("ix_order_authorizations_authorization", table_name="order_authorizations")
    op.drop_index("ix_ocsp_responses_this_update", table_name="ocsp_responses")
