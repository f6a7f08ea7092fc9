"""On SQLite the ACME nonces live in a file of their own beside the CA's database (``<database>.nonces``), off
the CA's write lock; on PostgreSQL they stay in the CA's database. Either way a nonce is accepted once."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import func, select

from candor.acme.nonces import NONCE_FILE_SUFFIX, NonceStore
from candor.clock import FakeClock
from candor.storage import Database
from candor.storage.models_acme import Nonce


@pytest.fixture
def store(db: Database) -> Iterator[NonceStore]:
    nonces = NonceStore.beside(db, FakeClock(), group_commit=True)
    try:
        yield nonces
    finally:
        nonces.close()


def _count(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(Nonce)) or 0


def test_on_sqlite_nonces_are_in_their_own_file_and_on_postgresql_in_the_cas_database(
    db: Database, store: NonceStore
) -> None:
    nonce = store.exchange(None)[1]
    if db.dialect == "sqlite":
        assert Path(f"{db.engine.url.database}{NONCE_FILE_SUFFIX}").is_file()
        assert _count(db) == 0  # not a row in the CA's database
        assert store.empty_at_start() == 1  # the file of its own is emptied when serve starts
    else:
        assert _count(db) == 1
        assert store.empty_at_start() == 0  # as durable as the CA's data, perhaps other nodes' live nonces
        assert store.redeem(nonce)
    assert not store.redeem(nonce)


_REDEEM_ALL = """
import sys
import time
from pathlib import Path
from candor.acme.nonces import NonceStore
from candor.clock import FakeClock
from candor.storage import Database

store = NonceStore.beside(Database(sys.argv[1]), FakeClock(), group_commit=True)
values = Path(sys.argv[2]).read_text().split()
Path(sys.argv[2] + ".ready").touch()
while not Path(sys.argv[3]).exists():  # both start together
    time.sleep(0.001)
accepted = [value for value in values if store.exchange(value)[0]]
store.close()
print(" ".join(accepted))
"""


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_nonce_is_accepted_once_by_two_processes_sharing_the_file(
    db: Database, store: NonceStore, tmp_path: Path
) -> None:
    issued = [store.exchange(None)[1] for _ in range(300)]
    url = db.engine.url.render_as_string(hide_password=False)
    # the same nonces in opposite orders, so that the two processes meet on every one of them
    (tmp_path / "forward").write_text("\n".join(issued))
    (tmp_path / "backward").write_text("\n".join(reversed(issued)))
    with ExitStack() as stack:
        processes = [
            stack.enter_context(
                subprocess.Popen(
                    [sys.executable, "-c", _REDEEM_ALL, url, str(tmp_path / name), str(tmp_path / "go")],
                    stdout=subprocess.PIPE,
                )
            )
            for name in ("forward", "backward")
        ]
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"{name}.ready").exists() for name in ("forward", "backward")):
            assert time.monotonic() < deadline and all(process.poll() is None for process in processes)
            time.sleep(0.01)
        (tmp_path / "go").touch()
        outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0]
    first, second = (set(output.decode().split()) for output in outputs)
    assert not first & second  # never accepted twice
    assert first | second == set(issued)  # and each accepted once
    assert first and second  # both processes took part


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_nonce_exchange_does_not_wait_for_the_cas_write_lock(db: Database, store: NonceStore) -> None:
    """Another writer holds the CA database's write queue (its ``flock``) and SQLite's write lock: nonces are
    still exchanged, since they queue on their own file's."""
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
