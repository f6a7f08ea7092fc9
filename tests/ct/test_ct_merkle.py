"""RFC 6962 2.1 Merkle trees: Candor's hashing, proofs and tiled tree against the published test vectors and
against an independent implementation written here, naively and recursively, from the RFC's definitions.

Vectors: the 8-leaf tree of the RFC 6962 reference implementation, as kept by transparency-dev/merkle
(``testonly/constants.go``: leaf inputs, node hashes, root hashes; ``proof/verify_test.go``: inclusion and
consistency proofs, there with 1-based leaf numbers). pymerkle, a third implementation, is compared in
test_ct_pymerkle.py.
"""

from __future__ import annotations

import pytest
from ct_reference import ref_mth, ref_path, ref_root_from_path, ref_subproof

from candor.ct.log.merkle import (
    EMPTY_ROOT,
    ProofError,
    consistency_path,
    inclusion_path,
    leaf_hash,
    list_range_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from candor.ct.log.tiles import TiledTree, tile_path

LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                      "606162636465666768696a6b6c6d6e6f")]  # fmt: skip
ROOTS = [bytes.fromhex(h) for h in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]  # fmt: skip
H = bytes.fromhex
# (0-based leaf index, tree size, audit path): verify_test.go's inclusionProofs, its leaf numbers minus one.
INCLUSION = [
    (0, 8, [H("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")]),
    (5, 8, [H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            H("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
    (2, 3, [H("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (1, 5, [H("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")]),
    (0, 1, []),
]  # fmt: skip
CONSISTENCY = [
    (1, 1, []),
    (1, 8, [H("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")]),
    (6, 8, [H("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            H("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
    (2, 5, [H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")]),
    (6, 7, [H("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            H("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
]  # fmt: skip


# --- the vectors ------------------------------------------------------------------------------------------


def test_roots_match_the_rfc_6962_reference_tree() -> None:
    hashes = [leaf_hash(leaf) for leaf in LEAVES]
    for size, expected in enumerate(ROOTS):
        assert root_of(hashes[:size]) == expected
        assert ref_mth(LEAVES[:size]) == expected
    assert ROOTS[0] == EMPTY_ROOT


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_inclusion_vectors_are_generated_and_verify(index: int, size: int, path: list[bytes]) -> None:
    hashes = [leaf_hash(leaf) for leaf in LEAVES[:size]]
    assert inclusion_path(index, size, list_range_hash(hashes)) == path
    assert ref_path(index, LEAVES[:size]) == path
    verify_inclusion(hashes[index], index, size, path, ROOTS[size])
    assert ref_root_from_path(index, size, hashes[index], path) == ROOTS[size]


@pytest.mark.parametrize(("first", "second", "path"), CONSISTENCY)
def test_consistency_vectors_are_generated_and_verify(first: int, second: int, path: list[bytes]) -> None:
    hashes = [leaf_hash(leaf) for leaf in LEAVES[:second]]
    assert consistency_path(first, second, list_range_hash(hashes)) == path
    assert ref_subproof(first, LEAVES[:second], True) == path
    verify_consistency(first, second, ROOTS[first], ROOTS[second], path)


@pytest.mark.parametrize(("index", "size", "path"), [v for v in INCLUSION if v[2]])
def test_inclusion_fails_when_one_hash_is_altered(index: int, size: int, path: list[bytes]) -> None:
    leaf = leaf_hash(LEAVES[index])
    for position in range(len(path)):
        altered = list(path)
        altered[position] = bytes([altered[position][0] ^ 8]) + altered[position][1:]
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, size, altered, ROOTS[size])
    bad_leaf = bytes([leaf[0] ^ 1]) + leaf[1:]
    bad_root = bytes([ROOTS[size][0] ^ 1]) + ROOTS[size][1:]
    probes = [
        (bad_leaf, index, size, path, ROOTS[size]),
        (leaf, index, size, path, bad_root),
        (leaf, index ^ 1, size, path, ROOTS[size]),
        (leaf, index, size * 2, path, ROOTS[size]),
        (leaf, index, size, path[:-1], ROOTS[size]),
        (leaf, index, size, [*path, ROOTS[size]], ROOTS[size]),
    ]
    for probe in probes:
        with pytest.raises(ProofError):
            verify_inclusion(*probe)


@pytest.mark.parametrize(("first", "second", "path"), [v for v in CONSISTENCY if v[2]])
def test_consistency_fails_when_one_hash_is_altered(first: int, second: int, path: list[bytes]) -> None:
    for position in range(len(path)):
        altered = list(path)
        altered[position] = bytes([altered[position][0] ^ 16]) + altered[position][1:]
        with pytest.raises(ProofError):
            verify_consistency(first, second, ROOTS[first], ROOTS[second], altered)
    probes = [
        (first, second, ROOTS[second], ROOTS[first], path),
        (first + 1, second, ROOTS[first], ROOTS[second], path),
        (first, second, ROOTS[first], ROOTS[second], path[:-1]),
        (first, second, ROOTS[first], ROOTS[second], [*path, ROOTS[first]]),
        (first, second, ROOTS[first], ROOTS[second], []),
    ]
    for probe in probes:
        with pytest.raises(ProofError):
            verify_consistency(*probe)


# --- the tiled tree against the independent implementation -------------------------------------------------


def _data(count: int) -> list[bytes]:
    return [i.to_bytes(4, "big") + b"candor" for i in range(count)]


def test_tiled_tree_agrees_with_the_rfc_for_every_size_and_proof_up_to_70() -> None:
    data = _data(70)
    tree = TiledTree()
    for size in range(1, len(data) + 1):
        tree.append([leaf_hash(data[size - 1])])
        root = ref_mth(data[:size])
        assert tree.root() == root
        for index in range(size):
            path = tree.inclusion_path(index, size)
            assert path == ref_path(index, data[:size])
            verify_inclusion(leaf_hash(data[index]), index, size, path, root)
        for first in range(1, size + 1):
            proof = tree.consistency_path(first, size)
            assert proof == ref_subproof(first, data[:size], True)
            verify_consistency(first, size, ref_mth(data[:first]), root, proof)


def test_tiled_tree_across_tile_levels_in_batches() -> None:
    data = _data(70_000)
    hashes = [leaf_hash(d) for d in data]
    tree = TiledTree()
    checked = [1, 255, 256, 257, 511, 512, 65_535, 65_536, 65_537, 70_000]
    start = 0
    for end in checked:
        tree.append(hashes[start:end])
        start = end
        assert tree.size == end
        assert tree.root() == root_of(hashes[:end])
    # static-ct-api's worked example: 70,000 leaves = 273 full level-0 tiles + a partial one of width 112,
    # one full level-1 tile + a partial one of width 17, and a partial level-2 tile of width 1.
    assert len(tree.tile(0, 272)) == 8192 and len(tree.tile(0, 273)) == 112 * 32
    assert len(tree.tile(1, 0)) == 8192 and len(tree.tile(1, 1)) == 17 * 32
    assert len(tree.tile(2, 0)) == 32 and tree.levels() == 3
    for index, size in [(0, 70_000), (69_999, 70_000), (65_536, 65_537), (12_345, 65_536), (300, 257 * 3)]:
        path = tree.inclusion_path(index, size)
        assert path == inclusion_path(index, size, list_range_hash(hashes[:size]))
        verify_inclusion(hashes[index], index, size, path, root_of(hashes[:size]))
    for first, second in [(1, 70_000), (256, 65_537), (65_536, 70_000), (300, 301), (12_345, 69_999)]:
        proof = tree.consistency_path(first, second)
        verify_consistency(first, second, root_of(hashes[:first]), root_of(hashes[:second]), proof)


def test_tiled_tree_reloads_from_its_tiles() -> None:
    hashes = [leaf_hash(d) for d in _data(1000)]
    tree = TiledTree()
    tree.append(hashes)
    keys = {(level, index) for level in range(tree.levels()) for index in range(4)}
    stored = {(level, index): value for level, index, value in tree.tiles_for(k for k in keys if tree.tile(*k))}
    reloaded = TiledTree(stored)
    assert reloaded.size == 1000 and reloaded.root() == tree.root()
    reloaded.append(hashes[:5])
    assert reloaded.root() == root_of(hashes + hashes[:5])
    del stored[(0, 1)]
    with pytest.raises(ValueError, match="does not match"):
        TiledTree(stored)


@pytest.mark.parametrize(
    ("level", "index", "width", "expected"),
    [
        (0, 0, 256, "tile/0/000"),
        (0, 1234067, 256, "tile/0/x001/x234/067"),
        (1, 1234, 17, "tile/1/x001/234.p/17"),
        ("data", 999, 256, "tile/data/999"),
        ("data", 1000, 1, "tile/data/x001/000.p/1"),
    ],
)
def test_tile_paths_follow_tlog_tiles(level: int | str, index: int, width: int, expected: str) -> None:
    assert tile_path(level, index, width) == expected
