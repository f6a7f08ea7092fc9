"""``candor serve``'s nonces (:func:`candor.acme.nonces.nonce_store`): on SQLite (one host) in memory shared by
the workers, off the CA's database and its write lock; on PostgreSQL (nodes share it) in the CA's database.
Either way a nonce is accepted once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from candor.acme.nonces import Nonces, nonce_store
from candor.acme.shared_nonces import SharedNonces
from candor.clock import FakeClock
from candor.storage import Database
from candor.storage.models_acme import Nonce


@pytest.fixture
def store(db: Database) -> Iterator[Nonces]:
    nonces = nonce_store(db, FakeClock())
    try:
        yield nonces
    finally:
        nonces.close()


def _count(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(Nonce)) or 0


def test_on_sqlite_nonces_are_in_memory_and_on_postgresql_in_the_cas_database(db: Database, store: Nonces) -> None:
    nonce = store.exchange(None)[1]
    if db.dialect == "sqlite":
        assert isinstance(store, SharedNonces)
        assert _count(db) == 0  # not a row in the CA's database
        assert not list(Path(str(db.engine.url.database)).parent.glob("*.nonces"))  # nor a file of their own
    else:
        assert _count(db) == 1
    assert store.redeem(nonce)
    assert not store.redeem(nonce)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_nonce_exchange_does_not_wait_for_the_cas_write_lock(db: Database, store: Nonces) -> None:
    """Another writer holds the CA database's write queue (its ``flock``) and SQLite's write lock: nonces are
    still exchanged, since they are not in the database."""
    nonce = store.exchange(None)[1]
    other = Database(db.engine.url.render_as_string(hide_password=False))  # its own lock file descriptor
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with other.connection():
            holding.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        assert holding.wait(10)
        used, fresh = pool.submit(store.exchange, nonce).result(timeout=5)
        assert used
        assert store.redeem(fresh)
    finally:
        release.set()
        holder.join()
        pool.shutdown()
        other.dispose()
