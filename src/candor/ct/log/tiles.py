"""The log's Merkle tree as tlog tiles (C2SP tlog-tiles, static-ct-api "Merkle Tree"): appended in batches,
hashed once.

A tile at level L, index N holds up to 256 consecutive hashes of tree height 8L: level 0 holds leaf hashes,
level 1 the roots of full level-0 tiles, and so on. Every complete subtree the RFC 6962 proofs need is
either one of those hashes or the root of at most 128 consecutive hashes inside one tile, so the tree
root, audit paths and consistency proofs cost O(log n) lookups and a few hundred hashes, never a rehash of
the log. Appending n leaves costs about n * (1 + 1/255) hashes. The same tiles are what the static read path
publishes and what the database keeps, so a restart reloads them instead of rehashing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from candor.ct.log.merkle import EMPTY_ROOT, HASH_SIZE, ProofError, consistency_path, inclusion_path, node_hash

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT  # 256 hashes, 8,192 bytes when full
TileKey = tuple[int, int]  # (level, index)


def tile_path(level: int | str, index: int, width: int = TILE_WIDTH) -> str:
    """static-ct-api / tlog-tiles: ``tile/<L>/<N>[.p/<W>]``, N in 3-digit elements, all but the last prefixed
    with ``x`` (1234067 -> ``x001/x234/067``); ``level`` "data" gives a data tile."""
    if index < 0 or not 1 <= width <= TILE_WIDTH:
        raise ValueError(f"no tile {index} of width {width}")
    groups = []
    remaining = index
    while True:
        groups.append(f"{remaining % 1000:03d}")
        remaining //= 1000
        if remaining == 0:
            break
    groups.reverse()
    encoded = "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])
    suffix = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/{level}/{encoded}{suffix}"


def _balanced_root(hashes: bytes) -> bytes:
    """The root of 2^j consecutive complete subtrees of equal height (a perfect binary tree over them)."""
    level = [hashes[i : i + HASH_SIZE] for i in range(0, len(hashes), HASH_SIZE)]
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


class TiledTree:
    """An append-only RFC 6962 tree stored as tiles. Not thread-safe: the owner serialises appends and reads."""

    def __init__(self, tiles: Mapping[TileKey, bytes] | None = None) -> None:
        self._tiles: dict[TileKey, bytearray] = {key: bytearray(value) for key, value in (tiles or {}).items()}
        self.size = sum(len(value) for (level, _), value in self._tiles.items() if level == 0) // HASH_SIZE
        self._check_loaded()

    def _check_loaded(self) -> None:
        for level in range(self.levels()):
            count = self.size >> (TILE_HEIGHT * level)
            for index in range((count + TILE_WIDTH - 1) // TILE_WIDTH):
                expected = min(TILE_WIDTH, count - index * TILE_WIDTH) * HASH_SIZE
                if len(self._tiles.get((level, index), b"")) != expected:
                    raise ValueError(f"tile {level}/{index} does not match a tree of size {self.size}")

    def levels(self) -> int:
        """How many tile levels a tree of this size has (hash tiles exist at levels 0 .. levels()-1)."""
        count, levels = self.size, 0
        while count > 0:
            levels += 1
            count >>= TILE_HEIGHT
        return levels

    def tile(self, level: int, index: int) -> bytes:
        """The tile's hashes as they stand (a partial tile is shorter than 8,192 bytes)."""
        return bytes(self._tiles.get((level, index), b""))

    def append(self, leaf_hashes: Iterable[bytes]) -> set[TileKey]:
        """Append leaves (already hashed, RFC 6962 2.1: SHA-256(0x00 || leaf)); the tiles that changed."""
        changed: set[TileKey] = set()
        for value in leaf_hashes:
            if len(value) != HASH_SIZE:
                raise ValueError("a leaf hash is 32 bytes")
            level, index, carry = 0, self.size, value
            while True:  # add the hash to its tile; a tile that fills up carries its root one level up
                key = (level, index // TILE_WIDTH)
                tile = self._tiles.setdefault(key, bytearray())
                tile += carry
                changed.add(key)
                if len(tile) < TILE_WIDTH * HASH_SIZE:
                    break
                carry = _balanced_root(bytes(tile))
                level, index = level + 1, index // TILE_WIDTH
            self.size += 1
        return changed

    def subtree(self, height: int, index: int, size: int | None = None) -> bytes:
        """MTH(D[index * 2^height : (index + 1) * 2^height]), a complete subtree inside the first *size* leaves."""
        size = self.size if size is None else size
        if (index + 1) << height > size:
            raise ProofError(f"subtree {height}/{index} is not complete in a tree of size {size}")
        level, within = divmod(height, TILE_HEIGHT)
        first = index << within  # position among the level's hashes
        tile = self._tiles[(level, first // TILE_WIDTH)]
        offset = (first % TILE_WIDTH) * HASH_SIZE
        return _balanced_root(bytes(tile[offset : offset + (HASH_SIZE << within)]))

    def range_hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) from complete subtrees (RFC 6962 2.1 applied to the range)."""
        if not 0 <= start < end <= self.size:
            raise ProofError(f"range {start}..{end} is not in a tree of size {self.size}")
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            return self.subtree(n.bit_length() - 1, start // n)
        k = 1 << ((n - 1).bit_length() - 1)
        return node_hash(self.range_hash(start, start + k), self.range_hash(start + k, end))

    def root(self, size: int | None = None) -> bytes:
        """The Merkle Tree Hash of the first *size* leaves (default: all)."""
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise ProofError(f"no tree of size {size}: the log has {self.size} entries")
        return EMPTY_ROOT if size == 0 else self.range_hash(0, size)

    def inclusion_path(self, index: int, size: int) -> list[bytes]:
        self._within(size)
        return inclusion_path(index, size, self.range_hash)

    def consistency_path(self, first: int, second: int) -> list[bytes]:
        self._within(second)
        return [] if first == 0 else consistency_path(first, second, self.range_hash)

    def _within(self, size: int) -> None:
        if not 0 <= size <= self.size:
            raise ProofError(f"no tree of size {size}: the log has {self.size} entries")

    def tiles_for(self, keys: Iterable[TileKey]) -> list[tuple[int, int, bytes]]:
        """(level, index, hashes) for *keys*, for storing and publishing."""
        return [(level, index, bytes(self._tiles[(level, index)])) for level, index in sorted(keys)]
