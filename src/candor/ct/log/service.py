"""One CT log: the write path (check, store in batches, SCT) and the reads, over the database and the tree.

This is the interface the HTTP routes (:mod:`candor.ct.log.app`) and in-process callers use. It holds no key:
it is handed a :class:`~candor.ct.log.signer.LogSigner`.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from sqlalchemy import Connection

from candor.clock import Clock
from candor.ct.log import store, tls
from candor.ct.log.chain import ChainChecker, Submission
from candor.ct.log.merkle import ProofError
from candor.ct.log.sequencer import Sequencer, now_ms
from candor.ct.log.settings import CtLogSettings
from candor.ct.log.signer import LogSigner, SignedTreeHead, log_id, sign_sct
from candor.ct.log.static import StaticTree
from candor.storage import Database
from candor.storage.group_commit import BatchWriter

MAX_ENTRIES_PER_REQUEST = 256  # RFC 6962 4.6: a log may return fewer entries than asked for


class LogRequestError(ValueError):
    """A read request the log cannot answer as asked (RFC 6962 4: HTTP 400)."""


@dataclass(frozen=True)
class LogParameters:
    """One log, resolved from its settings (:mod:`candor.ct.log.settings`)."""

    name: str
    key_label: str
    origin: str  # the submission prefix without the scheme (static-ct-api checkpoint origin)
    mmd: timedelta
    integrate_interval: timedelta
    integrate_batch: int
    static_dir: Path | None
    max_batch: int = 512  # submissions stored per transaction
    max_queued: int = 20_000  # submissions waiting for storage before add-chain answers 503

    @classmethod
    def from_settings(cls, settings: CtLogSettings, *, data_dir: Path, public_base_url: str) -> LogParameters:
        return cls(
            name=settings.name,
            key_label=settings.key_label or settings.name,
            origin=settings.origin_for(public_base_url),
            mmd=settings.mmd,
            integrate_interval=timedelta(milliseconds=settings.integrate_interval_ms),
            integrate_batch=settings.integrate_batch,
            static_dir=settings.static_path(data_dir),
        )


@dataclass(frozen=True)
class Sct:
    """A Signed Certificate Timestamp (RFC 6962 3.2) as the log issued it."""

    log_id: bytes
    timestamp: int
    extensions: bytes
    signature: bytes  # DER ECDSA

    def to_json(self) -> dict[str, object]:
        """RFC 6962 4.1 add-chain response."""
        return {
            "sct_version": tls.V1,
            "id": base64.b64encode(self.log_id).decode(),
            "timestamp": self.timestamp,
            "extensions": base64.b64encode(self.extensions).decode(),
            "signature": base64.b64encode(tls.digitally_signed(self.signature)).decode(),
        }

    def serialize(self) -> bytes:
        """The SCT as it goes into a SignedCertificateTimestampList (RFC 6962 3.3)."""
        return tls.serialized_sct(self.log_id, self.timestamp, self.extensions, self.signature)


class SharedWriter:
    """One batch writer for the logs that share a database (``candor serve``'s own): whatever is queued for any of
    them meanwhile is stored in one transaction, one commit and one turn of SQLite's write lock, instead of one
    per log (a certificate goes to two logs at once). Each log's part is exactly what its own writer would store
    (:func:`candor.ct.log.store.append_batch` under that log row's lock). Every log row of the batch is taken
    first, in row order (:func:`candor.ct.log.store.lock_logs`), so that processes appending to the same logs
    never wait on each other in a cycle, and no SCT is released before the commit. A batch that fails fails for
    every log in it, as one log's batch does. Stopped by the first of its logs to
    close: close them together (:meth:`CtLog.close`)."""

    def __init__(self, db: Database, *, max_batch: int = 1024, max_queued: int = 40_000, name: str = "ct-writer"):
        self._db = db
        self._writer: BatchWriter[tuple[CtLog, Submission], store.Logged] = BatchWriter(
            self._store, max_batch=max_batch, max_queued=max_queued, name=name
        )
        self._lock = threading.Lock()
        self._state = "new"

    def start(self) -> None:
        with self._lock:
            if self._state == "new":
                self._writer.start()
                self._state = "running"

    def stop(self) -> None:
        with self._lock:
            if self._state == "running":
                self._writer.stop()
                self._state = "stopped"

    def submit(self, log: CtLog, submission: Submission) -> Future[store.Logged]:
        return self._writer.submit((log, submission))

    def _store(self, items: Sequence[tuple[CtLog, Submission]]) -> list[store.Logged]:
        by_log: dict[int, tuple[CtLog, list[Submission]]] = {}
        for log, submission in items:
            by_log.setdefault(log.row, (log, []))[1].append(submission)
        staged = []
        with self._db.connection() as connection:
            store.lock_logs(connection, list(by_log))
            for row in sorted(by_log):
                log, submissions = by_log[row]
                staged.append((log, *log.append(connection, submissions)))
        found: dict[tuple[int, bytes], store.Logged] = {}
        for log, logged, known in staged:
            log.stored(logged, known)
            found.update(((log.row, s.identity), entry) for s, entry in zip(by_log[log.row][1], logged, strict=True))
        return [found[(log.row, submission.identity)] for log, submission in items]


def _refuse_a_fork(db: Database, name: str, *, published: int | None) -> None:
    """A log whose database is behind the checkpoint it has published (a database restored from an older backup,
    or another one: ``[ct] database`` changed under a running log) would sign a second tree of the sizes between
    them, a fork that monitors would rightly report as misbehaviour (RFC 6962 5.3, 7.3). Refuse to start it, before
    anything of it is written there."""
    if published is None:
        return
    with db.reader() as connection:
        held = store.tree_size_of(connection, name)
    if held < published:
        raise ValueError(
            f"its database holds a tree of {held} entries, but it has published a checkpoint of {published}: "
            "serving it from this database would fork the log (restore the database it was served from)"
        )


class CtLog:
    def __init__(
        self,
        parameters: LogParameters,
        *,
        db: Database,
        clock: Clock,
        signer: LogSigner,
        roots: Sequence[x509.Certificate],
        writer: SharedWriter | None = None,
        registry: Database | None = None,
    ) -> None:
        """*registry*: the database the log's key record is read from when the log's row is created (the CA's,
        where the ceremony records it), if not *db*."""
        if parameters.integrate_interval >= parameters.mmd:
            raise ValueError("the integration interval must be shorter than the maximum merge delay")
        self.parameters = parameters
        self.log_id = log_id(signer)
        self.public_key_der = signer.public_key_der
        self._db = db
        self._clock = clock
        self._signer = signer
        self._checker = ChainChecker.for_roots(roots)  # shared by the logs with these roots
        static = None
        if parameters.static_dir is not None:
            static = StaticTree(parameters.static_dir, origin=parameters.origin, log_id=self.log_id)
            _refuse_a_fork(db, parameters.name, published=static.published_size())
        self._row = store.ensure_log(
            db, name=parameters.name, key_label=parameters.key_label, log_id=self.log_id, now=clock.now(),
            registry=registry,
        )  # fmt: skip
        refresh = min(parameters.mmd / 2, timedelta(minutes=1))  # a fresh tree head at least this often
        self._sequencer = Sequencer(db, self._row, signer=signer, clock=clock, static=static, refresh=refresh)
        if writer is not None and writer._db is not db:
            raise ValueError("logs share a writer only when they share a database")
        self._shared = writer
        self._writer: BatchWriter[Submission, store.Logged] = BatchWriter(
            self._store_batch, max_batch=parameters.max_batch, max_queued=parameters.max_queued,
            name=f"ct-{parameters.name}-writer",
        )  # fmt: skip
        self._known_issuers: set[bytes] = set()
        with db.connection() as connection:
            self._stored_size = store.stored_size(connection, self._row)  # entries a crash left unintegrated too
        self._size_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._background: threading.Thread | None = None
        self._following = False
        self._followed_at = float("-inf")  # time.monotonic() of the last follow

    # -- life cycle ----------------------------------------------------------------------------------------
    def start(self, *, background: bool = True, sequence: bool = True) -> None:
        """Start storing submissions; with *background*, integrate them on the configured schedule too
        (without it, the caller calls :meth:`integrate`). The first tree head is signed here.

        With *sequence* false this process serves the log beside the one that sequences it (``candor serve``'s
        other workers): it stores submissions and gives SCTs (leaf indexes are allocated under the log row's
        lock in the database, :func:`candor.ct.log.store.append_batch`), and its reads follow the tree heads the
        sequencing process stores, never older than the integration interval; it never signs a tree head."""
        if self._shared is not None:
            self._shared.start()
        else:
            self._writer.start()
        if not sequence:
            self._following = True
            self._follow()
            return
        self._sequencer.integrate()
        if background:
            self._background = threading.Thread(
                target=self._sequencer.run,
                kwargs={"interval": self.parameters.integrate_interval, "batch": self.parameters.integrate_batch,
                        "pending": self.pending, "stop": self._stop, "wake": self._wake},
                name=f"ct-{self.parameters.name}-sequencer",
                daemon=True,
            )  # fmt: skip
            self._background.start()

    def close(self) -> None:
        """Stop taking submissions, store what was queued, integrate it, and stop. A shared writer stops for all
        its logs (they close together)."""
        if self._shared is not None:
            self._shared.stop()
        self._writer.stop()
        self._stop.set()
        self._wake.set()
        if self._background is not None:
            self._background.join()
            self._background = None
        if self.pending() and not self._following:
            self._sequencer.integrate()

    # -- write path -----------------------------------------------------------------------------------------
    def check(self, ders: Sequence[bytes], *, precertificate: bool) -> Submission:
        """RFC 6962 4.1/4.2 chain checks; raises :class:`~candor.ct.log.chain.SubmissionError`."""
        return self._checker.check(ders, precertificate=precertificate)

    def submit(self, submission: Submission) -> Future[Sct]:
        """Queue a checked submission; the future resolves to its SCT once the entry is stored."""
        logged = self._shared.submit(self, submission) if self._shared is not None else self._writer.submit(submission)
        result: Future[Sct] = Future()

        def done(finished: Future[store.Logged]) -> None:
            error = finished.exception()
            if error is not None:
                result.set_exception(error)
                return
            entry = finished.result()
            result.set_result(Sct(self.log_id, entry.timestamp, entry.extensions, entry.signature))

        logged.add_done_callback(done)
        return result

    def add_chain(self, ders: Sequence[bytes], *, precertificate: bool, timeout: float = 30.0) -> Sct:
        """Check, store and answer in one blocking call (for in-process submitters and tests)."""
        return self.submit(self.check(ders, precertificate=precertificate)).result(timeout=timeout)

    @property
    def row(self) -> int:
        """The log's row id in the database."""
        return self._row

    def _store_batch(self, submissions: Sequence[Submission]) -> list[store.Logged]:
        with self._db.connection() as connection:
            logged, known = self.append(connection, submissions)
        self.stored(logged, known)
        return logged

    def append(
        self, connection: Connection, submissions: Sequence[Submission]
    ) -> tuple[list[store.Logged], set[bytes]]:
        """Store *submissions* in the caller's transaction (:func:`candor.ct.log.store.append_batch`); after it
        commits, hand what this returns to :meth:`stored` (and only then release the SCTs)."""

        def sign(ts: int, entry: tls.SignedEntry, extensions: bytes) -> bytes:
            return sign_sct(self._signer, ts, entry, extensions)

        known = set(self._known_issuers)  # taken as stored only once the batch commits: a rolled-back issuer
        logged = store.append_batch(  # would otherwise never be inserted, and get-entries would fail
            connection, self._row, submissions, now_ms=lambda: now_ms(self._clock), sign=sign, known_issuers=known
        )
        return logged, known

    def stored(self, logged: Sequence[store.Logged], known: set[bytes]) -> None:
        """The batch :meth:`append` stored has committed."""
        self._known_issuers = known
        with self._size_lock:
            self._stored_size = max(self._stored_size, max(e.leaf_index for e in logged) + 1)
        if self.pending() >= self.parameters.integrate_batch:
            self._wake.set()

    def pending(self) -> int:
        """Entries stored (SCTs given) but not yet in a signed tree head."""
        with self._size_lock:
            return self._stored_size - self._sequencer.size()

    def integrate(self) -> SignedTreeHead:
        if self._following:
            raise RuntimeError(f"CT log {self.parameters.name}: this process follows the log; it does not sequence it")
        return self._sequencer.integrate()

    def _follow(self, *, at_least: int = 0) -> SignedTreeHead:
        """A following process's view: refreshed from storage when older than the integration interval, or when a
        request names a tree larger than the one it holds (a head the sequencing process served a moment ago)."""
        if self._following:
            stale = time.monotonic() - self._followed_at >= self.parameters.integrate_interval.total_seconds()
            if stale or self._sequencer.size() < at_least:
                self._followed_at = time.monotonic()
                return self._sequencer.follow()
        return self._sequencer.head()

    # -- read path (RFC 6962 4.3-4.8) ------------------------------------------------------------------------
    def head(self) -> SignedTreeHead:
        return self._follow()

    def consistency(self, first: int, second: int) -> list[bytes]:
        """RFC 6962 4.4: 0 <= first <= second <= the newest tree head's size."""
        size = self._follow(at_least=second).tree_size
        if not 0 <= first <= second <= size:
            raise LogRequestError(f"need 0 <= first <= second <= {size}")
        return self._sequencer.consistency_path(first, second)

    def proof_by_hash(self, value: bytes, tree_size: int) -> tuple[int, list[bytes]]:
        """RFC 6962 4.5: the leaf index and audit path of the leaf whose hash is *value*."""
        self._tree_size_ok(tree_size)
        with self._db.reader() as connection:
            index = store.index_of_leaf_hash(connection, self._row, value, tree_size)
        if index is None:
            raise LogRequestError(f"no leaf with that hash in the tree of size {tree_size}")
        return index, self._sequencer.inclusion_path(index, tree_size)

    def entries(self, start: int, end: int) -> list[tuple[bytes, bytes]]:
        """RFC 6962 4.6: (leaf_input, extra_data) for start..end inclusive, capped, within the tree head."""
        size = self._follow(at_least=start + 1).tree_size
        if start < 0 or end < start or start >= size:
            raise LogRequestError(f"need 0 <= start <= end and start < {size}")
        end = min(end, start + MAX_ENTRIES_PER_REQUEST - 1, size - 1)
        with self._db.reader() as connection:
            found = store.entries(connection, self._row, start, end + 1)
            issuers = store.issuers(connection, {f for entry in found for f in entry.chain})
        return [
            (e.leaf_input, tls.extra_data(e.entry_type, [issuers[f] for f in e.chain], e.precertificate)) for e in found
        ]

    def entry_and_proof(self, index: int, tree_size: int) -> tuple[bytes, bytes, list[bytes]]:
        """RFC 6962 4.8: one entry and its audit path in the tree of *tree_size*."""
        self._tree_size_ok(tree_size)
        if not 0 <= index < tree_size:
            raise LogRequestError(f"need 0 <= leaf_index < tree_size = {tree_size}")
        leaf_input, extra = self.entries(index, index)[0]
        return leaf_input, extra, self._sequencer.inclusion_path(index, tree_size)

    def roots(self) -> list[bytes]:
        """RFC 6962 4.7: the accepted roots, DER."""
        return list(self._checker.root_ders)

    def _tree_size_ok(self, tree_size: int) -> None:
        size = self._follow(at_least=tree_size).tree_size
        if not 1 <= tree_size <= size:
            raise LogRequestError(f"need 1 <= tree_size <= {size}")


__all__ = ["CtLog", "LogParameters", "LogRequestError", "ProofError", "Sct", "SharedWriter"]
