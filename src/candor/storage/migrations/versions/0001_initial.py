"""Initial schema: keys, issuers, serials, certificates, audit_events.

Revision ID: 0001
Revises:
Create Date: 2026-01-01

Self-contained on purpose: it does not import candor.storage.models, whose later versions describe later
schemas. Names of constraints are spelled out in full (op.f) so they never depend on a naming convention.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(128), nullable=False),
        sa.Column("store", sa.String(64), nullable=False),
        sa.Column("backend", sa.String(16), nullable=False),
        sa.Column("algorithm", sa.String(32), nullable=False),
        sa.Column("handle", sa.String(256), nullable=False),
        sa.Column("public_key_der", sa.LargeBinary(), nullable=False),
        sa.Column("spki_sha256", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_keys")),
        sa.UniqueConstraint("label", name=op.f("uq_keys_label")),
        sa.UniqueConstraint("spki_sha256", name=op.f("uq_keys_spki_sha256")),
        sa.CheckConstraint("backend IN ('file', 'pkcs11')", name=op.f("ck_keys_backend")),
        sa.CheckConstraint(
            "algorithm IN ('rsa-2048', 'rsa-3072', 'rsa-4096', 'ecdsa-p256', 'ecdsa-p384')",
            name=op.f("ck_keys_algorithm"),
        ),
        sa.CheckConstraint(
            "purpose IN ('root-ca', 'tls-ca', 'tsa-ca', 'tsa-unit', 'ocsp-responder', 'ct-log')",
            name=op.f("ck_keys_purpose"),
        ),
    )
    op.create_table(
        "issuers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("certificate_der", sa.LargeBinary(), nullable=False),
        sa.Column("subject_der", sa.LargeBinary(), nullable=False),
        sa.Column("ski_hex", sa.String(128), nullable=False),
        sa.Column("fingerprint_sha256", sa.String(64), nullable=False),
        _ts("not_before"),
        _ts("not_after"),
        sa.Column("status", sa.String(16), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issuers")),
        sa.ForeignKeyConstraint(["parent_id"], ["issuers.id"], name=op.f("fk_issuers_parent_id_issuers")),
        sa.ForeignKeyConstraint(["key_id"], ["keys.id"], name=op.f("fk_issuers_key_id_keys")),
        sa.UniqueConstraint("name", name=op.f("uq_issuers_name")),
        sa.UniqueConstraint("fingerprint_sha256", name=op.f("uq_issuers_fingerprint_sha256")),
        sa.CheckConstraint("kind IN ('root', 'tls', 'tsa')", name=op.f("ck_issuers_kind")),
        sa.CheckConstraint("status IN ('active', 'retired')", name=op.f("ck_issuers_status")),
        sa.CheckConstraint(
            "(kind = 'root' AND parent_id IS NULL) OR (kind <> 'root' AND parent_id IS NOT NULL)",
            name=op.f("ck_issuers_root_has_no_parent"),
        ),
    )
    op.create_table(
        "serials",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("issuer_id", sa.Integer(), nullable=False),
        sa.Column("serial_hex", sa.String(40), nullable=False),
        sa.Column("order_ref", sa.String(128), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        _ts("revoked_at", nullable=True),
        sa.Column("revocation_reason", sa.Integer(), nullable=True),
        _ts("expires_at", nullable=True),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serials")),
        sa.ForeignKeyConstraint(["issuer_id"], ["issuers.id"], name=op.f("fk_serials_issuer_id_issuers")),
        sa.UniqueConstraint("issuer_id", "serial_hex", name=op.f("uq_serials_issuer_serial")),
        sa.CheckConstraint("status IN ('reserved', 'issued', 'revoked')", name=op.f("ck_serials_status")),
        sa.CheckConstraint(
            "revocation_reason IS NULL OR revocation_reason IN (0, 1, 2, 3, 4, 5, 6, 8, 9, 10)",
            name=op.f("ck_serials_revocation_reason"),
        ),
        sa.CheckConstraint(
            "(status = 'revoked' AND revoked_at IS NOT NULL) "
            "OR (status <> 'revoked' AND revoked_at IS NULL AND revocation_reason IS NULL)",
            name=op.f("ck_serials_revoked_has_time"),
        ),
        sa.CheckConstraint(
            "serial_hex = lower(serial_hex) AND length(serial_hex) % 2 = 0 AND length(serial_hex) BETWEEN 2 AND 40",
            name=op.f("ck_serials_serial_hex_form"),
        ),
    )
    op.create_table(
        "certificates",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("serial_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("tbs_sha256", sa.String(64), nullable=False),
        sa.Column("fingerprint_sha256", sa.String(64), nullable=False),
        _ts("not_before"),
        _ts("not_after"),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificates")),
        sa.ForeignKeyConstraint(["serial_id"], ["serials.id"], name=op.f("fk_certificates_serial_id_serials")),
        sa.UniqueConstraint("serial_id", "kind", name=op.f("uq_certificates_serial_kind")),
        sa.UniqueConstraint("fingerprint_sha256", name=op.f("uq_certificates_fingerprint_sha256")),
        sa.CheckConstraint("kind IN ('precertificate', 'certificate')", name=op.f("ck_certificates_kind")),
    )
    op.create_table(
        "ocsp_responders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("certificate_id", sa.BigInteger(), nullable=False),
        _ts("not_before"),
        _ts("not_after"),
        sa.Column("status", sa.String(16), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ocsp_responders")),
        sa.ForeignKeyConstraint(["issuer_id"], ["issuers.id"], name=op.f("fk_ocsp_responders_issuer_id_issuers")),
        sa.ForeignKeyConstraint(["key_id"], ["keys.id"], name=op.f("fk_ocsp_responders_key_id_keys")),
        sa.ForeignKeyConstraint(
            ["certificate_id"], ["certificates.id"], name=op.f("fk_ocsp_responders_certificate_id_certificates")
        ),
        sa.UniqueConstraint("certificate_id", name=op.f("uq_ocsp_responders_certificate_id")),
        sa.CheckConstraint("status IN ('active', 'retired')", name=op.f("ck_ocsp_responders_status")),
    )
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        _ts("occurred_at"),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(512), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_events")),
        sa.UniqueConstraint("prev_hash", name=op.f("uq_audit_events_prev_hash")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_events_hash")),
        sa.CheckConstraint("outcome IN ('success', 'failure', 'info')", name=op.f("ck_audit_events_outcome")),
        sa.CheckConstraint("seq >= 1", name=op.f("ck_audit_events_seq_positive")),
    )


def downgrade() -> None:
    for table in ("audit_events", "ocsp_responders", "certificates", "serials", "issuers", "keys"):
        op.drop_table(table)
