"""A compact range: the tree of RFC 6962 2.1 kept as the roots of its perfect subtrees, O(log n) hashes.

A tree of n leaves is, by the RFC's definition of MTH (the left subtree of a split holds the largest power of
two smaller than n), a sequence of perfect subtrees whose sizes are the binary digits of n, largest first. Its
root is those subtree roots folded from the right: MTH(D[n]) = node(s_1, node(s_2, ... node(s_k-1, s_k))).
Appending a leaf pushes a subtree of size 1 and merges equal neighbours, as binary addition carries. This is
how an auditor checks that the entries a log serves hash to the root its tree head signs, a batch at a time,
without keeping the entries (certspotter's "collapsed tree" does the same).
"""

from __future__ import annotations

from collections.abc import Sequence

from candor.ct.log.merkle import EMPTY_ROOT, HASH_SIZE, node_hash


class CompactRange:
    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0 or len(hashes) != size.bit_count():
            raise ValueError(f"a tree of size {size} is {size.bit_count()} perfect subtrees, not {len(hashes)}")
        if any(len(h) != HASH_SIZE for h in hashes):
            raise ValueError("subtree roots are SHA-256 hashes")
        self._size = size
        # (subtree size, subtree root), largest first: the set bits of size, high to low
        sizes = [1 << bit for bit in range(size.bit_length() - 1, -1, -1) if size >> bit & 1]
        self._subtrees: list[tuple[int, bytes]] = list(zip(sizes, hashes, strict=True))

    @classmethod
    def from_bytes(cls, size: int, packed: bytes) -> CompactRange:
        """The stored form: the subtree roots, 32 bytes each, largest first."""
        if len(packed) % HASH_SIZE:
            raise ValueError("a packed compact range is a whole number of hashes")
        return cls(size, [packed[i : i + HASH_SIZE] for i in range(0, len(packed), HASH_SIZE)])

    def to_bytes(self) -> bytes:
        return b"".join(h for _size, h in self._subtrees)

    @property
    def size(self) -> int:
        return self._size

    def append(self, leaf_hash: bytes) -> None:
        """Add one leaf (its RFC 6962 2.1 leaf hash, SHA-256(0x00 || leaf))."""
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError("a leaf hash is a SHA-256 hash")
        subtrees = self._subtrees
        subtrees.append((1, leaf_hash))
        while len(subtrees) > 1 and subtrees[-1][0] == subtrees[-2][0]:
            (size, right), (_, left) = subtrees.pop(), subtrees.pop()
            subtrees.append((2 * size, node_hash(left, right)))
        self._size += 1

    def root(self) -> bytes:
        """MTH(D[size]) (RFC 6962 2.1); SHA-256 of nothing for the empty tree."""
        if not self._subtrees:
            return EMPTY_ROOT
        root = self._subtrees[-1][1]
        for _size, left in reversed(self._subtrees[:-1]):
            root = node_hash(left, root)
        return root

    def copy(self) -> CompactRange:
        return CompactRange(self._size, [h for _size, h in self._subtrees])


__all__ = ["CompactRange"]
