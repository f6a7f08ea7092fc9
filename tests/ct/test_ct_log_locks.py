"""A batch for several logs takes every log's row before it stores anything (candor.ct.log.store.lock_logs), so
two processes appending to the same logs on PostgreSQL cannot wait on each other in a cycle through a new
issuer's unique key; on SQLite the write lock already excludes every other writer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from candor.ct.log import store
from candor.storage import Database
from candor.storage.repositories import add_key

NOW = datetime(2026, 11, 27, tzinfo=UTC)


def test_every_log_row_of_a_batch_is_taken_before_it_stores(postgres_schema_url: str) -> None:
    db = Database(postgres_schema_url)
    db.upgrade()
    try:
        for label in ("a", "b"):
            public = ec.generate_private_key(ec.SECP256R1()).public_key()
            with db.session() as session:
                add_key(
                    session, label=label, store="main", backend="file", algorithm="ecdsa-p256", handle=f"{label}.key",
                    public_key_der=public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo),
                    purpose="ct-log", created_at=NOW,
                )  # fmt: skip
        first = store.ensure_log(db, name="log-a", key_label="a", log_id=b"a" * 32, now=NOW)
        second = store.ensure_log(db, name="log-b", key_label="b", log_id=b"b" * 32, now=NOW)
        with db.connection() as holder:
            store.lock_logs(holder, [second, first])
            for row in (first, second):
                with db.engine.connect() as other, pytest.raises(OperationalError, match="could not obtain lock"):
                    other.execute(text("SELECT id FROM ct_logs WHERE id = :r FOR UPDATE NOWAIT"), {"r": row})
    finally:
        db.dispose()
