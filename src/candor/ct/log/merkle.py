"""RFC 6962 section 2.1 Merkle Hash Trees: hashing, audit paths and consistency proofs, and their verification.

Pure functions. Proof *generation* follows the recursive definitions of RFC 6962 2.1.1 (PATH) and 2.1.2
(PROOF / SUBPROOF), asking a ``RangeHash`` for the Merkle Tree Hash of any range of leaves it needs, so the
same code serves a list of leaves (tests, small trees) and the tiled tree (:mod:`candor.ct.log.tiles`), which
answers from stored complete-subtree hashes in O(log n). *Verification* uses the iterative algorithms of
RFC 9162 2.1.3.2 and 2.1.4.2, which check RFC 6962 proofs exactly (the tree and proofs did not change in 9162).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()  # RFC 6962 2.1: MTH({}) = SHA-256()

RangeHash = Callable[[int, int], bytes]
"""``range_hash(start, end)`` = MTH(D[start:end]), for 0 <= start < end <= the tree's size."""


class ProofError(ValueError):
    """A proof does not verify, or its parameters are out of range."""


def leaf_hash(leaf: bytes) -> bytes:
    """RFC 6962 2.1: MTH({d(0)}) = SHA-256(0x00 || d(0))."""
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 2.1: SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """RFC 6962 2.1: k, the largest power of two smaller than n (n > 1)."""
    if n < 2:
        raise ValueError("a split needs at least two leaves")
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves, by the RFC's recursion (balanced left subtrees of size 2^i)."""
    if not leaf_hashes:
        return EMPTY_ROOT
    if len(leaf_hashes) == 1:
        return leaf_hashes[0]
    k = split_point(len(leaf_hashes))
    return node_hash(root_of(leaf_hashes[:k]), root_of(leaf_hashes[k:]))


def list_range_hash(leaf_hashes: Sequence[bytes]) -> RangeHash:
    """A RangeHash over a list of leaf hashes (recomputes each range: for small trees)."""
    return lambda start, end: root_of(leaf_hashes[start:end])


def inclusion_path(index: int, size: int, range_hash: RangeHash) -> list[bytes]:
    """RFC 6962 2.1.1: PATH(m, D[n]), the audit path of leaf *index* in the tree of *size* leaves."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    path: list[bytes] = []
    start, n, m = 0, size, index
    while n > 1:  # the recursion unrolled: each step appends the sibling subtree's hash, innermost first
        k = split_point(n)
        if m < k:
            path.append(range_hash(start + k, start + n))
            n = k
        else:
            path.append(range_hash(start, start + k))
            start, n, m = start + k, n - k, m - k
    path.reverse()
    return path


def consistency_path(first: int, second: int, range_hash: RangeHash) -> list[bytes]:
    """RFC 6962 2.1.2: PROOF(m, D[n]) = SUBPROOF(m, D[n], true), for 0 < m <= n; empty when m == n."""
    if not 0 < first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    proof: list[bytes] = []
    start, n, m, complete = 0, second, first, True
    while m != n:
        k = split_point(n)
        if m <= k:  # SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            proof.append(range_hash(start + k, start + n))
            n = k
        else:  # SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
            proof.append(range_hash(start, start + k))
            start, n, m, complete = start + k, n - k, m - k, False
    if not complete:  # SUBPROOF(m, D[m], false) = {MTH(D[m])}
        proof.append(range_hash(start, start + n))
    proof.reverse()
    return proof


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def root_from_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes:
    """RFC 9162 2.1.3.2: the root that *path* proves leaf hash *leaf* at *index* to be under."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    _check_hash(leaf, "the leaf hash")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        _check_hash(p, "a proof element")
        if sn == 0:
            raise ProofError("the proof is longer than the tree is high")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the proof is shorter than the tree is high")
    return r


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> None:
    """Raise :class:`ProofError` unless *path* proves leaf hash *leaf* at *index* in the tree (*size*, *root*)."""
    if root_from_inclusion(leaf, index, size, path) != root:
        raise ProofError("the inclusion proof does not lead to the root")


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]) -> None:
    """RFC 9162 2.1.4.2: raise :class:`ProofError` unless *path* proves the tree (*second*, *second_root*)
    extends the tree (*first*, *first_root*)."""
    if not 0 <= first <= second:
        raise ProofError(f"size {first} cannot precede size {second}")
    _check_hash(first_root, "the first root")
    _check_hash(second_root, "the second root")
    if first == second:
        if path or first_root != second_root:
            raise ProofError("equal sizes need equal roots and an empty proof")
        return
    if first == 0:
        if path:
            raise ProofError("a proof from the empty tree is empty")
        return
    if not path:
        raise ProofError("the proof is empty")
    for p in path:
        _check_hash(p, "a proof element")
    nodes = list(path)
    if first & (first - 1) == 0:  # first is a power of two: its root is a node of the second tree
        nodes.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = nodes[0]
    for c in nodes[1:]:
        if sn == 0:
            raise ProofError("the proof is longer than the tree is high")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != first_root or sr != second_root:
        raise ProofError("the consistency proof does not lead to both roots")
