"""Integration: stored entries go into the Merkle tree (RFC 6962 2.1) in batches, and a tree head is signed.

One round reads the entries stored since the last tree head (in a read-only transaction: on SQLite outside the
write lock, which a round then takes once, to store its tree head), appends their leaf hashes to the tiled tree,
writes the static files (data tiles, hash tiles, issuers), signs a tree head (3.5) whose timestamp is no older
than any entry it covers, stores the changed tiles and the head in one transaction, and then writes the
checkpoint. Rounds run every ``interval``, or as soon as ``batch`` entries wait, so every entry is in a signed
tree head well within the maximum merge delay. A failed round leaves the tree as stored and is retried.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from candor.clock import Clock
from candor.ct.log import store
from candor.ct.log.merkle import leaf_hash
from candor.ct.log.signer import LogSigner, SignedTreeHead, sign_tree_head
from candor.ct.log.static import StaticTree, tile_leaf
from candor.ct.log.tiles import TILE_WIDTH, TiledTree
from candor.ct.log.tls import parse_merkle_tree_leaf
from candor.storage import Database

log = logging.getLogger(__name__)
READ_LIMIT = 8192  # entries read per round at most; a longer backlog takes several rounds


def now_ms(clock: Clock) -> int:
    return int(clock.now().timestamp() * 1000)


class Sequencer:
    """Owns the tree and the newest tree head; its read methods are safe to call from any thread."""

    def __init__(
        self,
        db: Database,
        log_row: int,
        *,
        signer: LogSigner,
        clock: Clock,
        static: StaticTree | None,
        refresh: timedelta,
    ) -> None:
        self._db = db
        self._log = log_row
        self._signer = signer
        self._clock = clock
        self._static = static
        self._refresh_ms = int(refresh.total_seconds() * 1000)
        self._lock = threading.Lock()  # the tree and head, for readers
        self._round = threading.Lock()  # one integration at a time
        self._tree = TiledTree()
        self._head: SignedTreeHead | None = None
        self._data_tile: list[bytes] = []  # TileLeafs of the newest, partial data tile
        self._load()

    # -- reads --------------------------------------------------------------------------------------------
    def head(self) -> SignedTreeHead:
        with self._lock:
            if self._head is None:
                raise RuntimeError("the log has no tree head yet")
            return self._head

    def inclusion_path(self, index: int, size: int) -> list[bytes]:
        with self._lock:
            return self._tree.inclusion_path(index, size)

    def consistency_path(self, first: int, second: int) -> list[bytes]:
        with self._lock:
            return self._tree.consistency_path(first, second)

    # -- integration --------------------------------------------------------------------------------------
    def _load(self) -> None:
        with self._db.reader() as connection:
            tiles = store.tiles(connection, self._log)
            head = store.latest_tree_head(connection, self._log)
            tree = TiledTree(tiles)
            tail = tree.size - tree.size % TILE_WIDTH
            partial = store.entries(connection, self._log, tail, tree.size) if self._static else []
        if head is not None and (head.tree_size != tree.size or head.root_hash != tree.root()):
            raise ValueError(f"CT log {self._log}: the stored tiles do not match the newest tree head")
        with self._lock:
            self._tree, self._head = tree, head
            self._data_tile = [tile_leaf(entry) for entry in partial]

    def integrate(self) -> SignedTreeHead:
        """One round; returns the newest tree head (a fresh one if anything was added or the last is stale)."""
        with self._round:
            try:
                return self._integrate()
            except Exception:
                self._load()  # the stored state is the truth: drop what this round did in memory
                raise

    def _integrate(self) -> SignedTreeHead:
        size = self._tree.size
        with self._db.reader() as connection:
            new = store.entries(connection, self._log, size, size + READ_LIMIT)
        previous = self._head
        if not new and previous is not None and now_ms(self._clock) - previous.timestamp < self._refresh_ms:
            return previous
        hashes = []
        for expected, entry in enumerate(new, start=size):
            if entry.leaf_index != expected:
                raise ValueError(f"entry {expected} is missing from the log's storage")
            hashes.append(leaf_hash(entry.leaf_input))
        latest_entry = max((parse_merkle_tree_leaf(e.leaf_input).timestamp for e in new), default=0)
        with self._lock:
            changed = self._tree.append(hashes)
            root = self._tree.root()
            tiles = self._tree.tiles_for(changed)
        if self._static is not None:
            self._publish(new, tiles, size)
        timestamp = max(now_ms(self._clock), latest_entry, previous.timestamp if previous else 0)
        head = sign_tree_head(self._signer, size + len(new), timestamp, root)
        with self._db.connection() as connection:
            store.save_tree_head(connection, self._log, head, tiles)
        if self._static is not None:
            self._static.write_checkpoint(head)
        with self._lock:
            self._head = head
        return head

    # -- following: a process that serves the log beside the one that sequences it ------------------------
    def follow(self) -> SignedTreeHead:
        """Adopt the newest tree head the sequencing process stored: extend the tree with the entries it covers and
        check that the head's root is the tree's. A following process never signs a tree head (two signers of
        one log could sign two different trees of one size)."""
        with self._round:
            try:
                return self._follow()
            except Exception:
                self._load()  # the stored state is the truth
                raise

    def _follow(self) -> SignedTreeHead:
        size = self._tree.size
        new: list[store.StoredEntry] = []
        with self._db.reader() as connection:
            head = store.latest_tree_head(connection, self._log)
            if head is None:
                raise RuntimeError("the log has no tree head yet")
            while size + len(new) < head.tree_size:
                start = size + len(new)
                found = store.entries(connection, self._log, start, min(head.tree_size, start + READ_LIMIT))
                if not found:
                    break
                new += found
        if head.tree_size < size:
            raise ValueError(f"CT log {self._log}: the newest stored tree head is smaller than this process's tree")
        hashes = []
        for expected, entry in enumerate(new, start=size):
            if entry.leaf_index != expected:
                raise ValueError(f"entry {expected} is missing from the log's storage")
            hashes.append(leaf_hash(entry.leaf_input))
        with self._lock:
            self._tree.append(hashes)
            if self._tree.size != head.tree_size or self._tree.root() != head.root_hash:
                raise ValueError(f"CT log {self._log}: the newest stored tree head does not match its entries")
            self._head = head
        return head

    def _publish(self, new: list[store.StoredEntry], tiles: list[tuple[int, int, bytes]], size: int) -> None:
        assert self._static is not None
        fingerprints = [f for entry in new for f in entry.chain]
        missing = self._static.missing_issuers(fingerprints)
        if missing:
            with self._db.reader() as connection:
                found = store.issuers(connection, missing)
            for fingerprint in missing:
                self._static.write_issuer(fingerprint, found[fingerprint])
        position = size
        for entry in new:  # data tiles: each full one as it fills, then the newest partial one
            self._data_tile.append(tile_leaf(entry))
            position += 1
            if len(self._data_tile) == TILE_WIDTH:
                self._static.write_data_tile(position // TILE_WIDTH - 1, self._data_tile)
                self._data_tile = []
        if self._data_tile:
            self._static.write_data_tile(position // TILE_WIDTH, self._data_tile)
        self._static.write_hash_tiles(tiles)

    # -- the background loop ------------------------------------------------------------------------------
    def run(self, *, interval: timedelta, batch: int, pending: Callable[[], int], stop: threading.Event,
            wake: threading.Event) -> None:  # fmt: skip
        """Integrate every *interval*, or once *batch* entries are pending; until *stop* is set."""
        period = interval.total_seconds()
        while not stop.is_set():
            if pending() < batch:
                wake.wait(timeout=period)  # the write path sets *wake* once *batch* entries are pending
                wake.clear()
            if stop.is_set():
                break
            try:
                self.integrate()
            except Exception:
                log.exception("CT log %d: integration failed; retrying next round", self._log)
                stop.wait(timeout=period)

    def size(self) -> int:
        with self._lock:
            return self._tree.size
