"""A second, independent RFC 6962 2.1 implementation (pymerkle, PyPI) agrees with Candor's Merkle tree: the
root of every size, and Candor's audit paths and consistency proofs verify against pymerkle's roots."""

from __future__ import annotations

import hashlib

import pytest
from pymerkle import InmemoryTree

from candor.ct.log.merkle import (
    ProofError,
    consistency_path,
    inclusion_path,
    leaf_hash,
    list_range_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [hashlib.sha256(str(i).encode()).digest()[: i % 7 + 1] for i in range(70)]


@pytest.fixture(scope="module")
def pymerkle_roots() -> dict[int, bytes]:
    tree = InmemoryTree(algorithm="sha256")  # RFC 9162 (= RFC 6962) 0x00 / 0x01 domain separation
    roots = {}
    for size, leaf in enumerate(LEAVES, start=1):
        tree.append_entry(leaf)
        roots[size] = tree.get_root(size)
    return roots


def test_roots_agree_for_every_size(pymerkle_roots: dict[int, bytes]) -> None:
    hashes = [leaf_hash(leaf) for leaf in LEAVES]
    for size in range(1, len(LEAVES) + 1):
        assert root_of(hashes[:size]) == pymerkle_roots[size], size


def test_candor_proofs_verify_against_pymerkle_roots(pymerkle_roots: dict[int, bytes]) -> None:
    hashes = [leaf_hash(leaf) for leaf in LEAVES]
    for size in (1, 2, 3, 7, 8, 9, 31, 32, 33, 70):
        ranges = list_range_hash(hashes[:size])
        for index in range(size):
            path = inclusion_path(index, size, ranges)
            verify_inclusion(hashes[index], index, size, path, pymerkle_roots[size])
        for first in range(1, size):
            proof = consistency_path(first, size, ranges)
            verify_consistency(first, size, pymerkle_roots[first], pymerkle_roots[size], proof)


def test_a_proof_against_another_root_fails(pymerkle_roots: dict[int, bytes]) -> None:
    hashes = [leaf_hash(leaf) for leaf in LEAVES[:9]]
    path = inclusion_path(4, 9, list_range_hash(hashes))
    with pytest.raises(ProofError):
        verify_inclusion(hashes[4], 4, 9, path, pymerkle_roots[8])
    proof = consistency_path(5, 9, list_range_hash(hashes))
    with pytest.raises(ProofError):
        verify_consistency(5, 9, pymerkle_roots[4], pymerkle_roots[9], proof)
