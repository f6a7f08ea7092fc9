"""An implementation of RFC 6962 that shares no code with Candor's, for the tests to check Candor against:
the Merkle Tree Hash, PATH and SUBPROOF of RFC 6962 2.1, 2.1.1 and 2.1.2 transcribed literally (recursive,
on the leaf data, rehashing everything), and the wire structures of 3.2-3.5 packed with ``struct``."""

from __future__ import annotations

import hashlib
import struct


def ref_mth(data: list[bytes]) -> bytes:
    n = len(data)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(data[:k]) + ref_mth(data[k:])).digest()


def ref_path(m: int, data: list[bytes]) -> list[bytes]:
    n = len(data)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*ref_path(m, data[:k]), ref_mth(data[k:])]
    return [*ref_path(m - k, data[k:]), ref_mth(data[:k])]


def ref_subproof(m: int, data: list[bytes], b: bool) -> list[bytes]:
    n = len(data)
    if m == n:
        return [] if b else [ref_mth(data)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*ref_subproof(m, data[:k], b), ref_mth(data[k:])]
    return [*ref_subproof(m - k, data[k:], False), ref_mth(data[:k])]


def ref_root_from_path(m: int, n: int, leaf: bytes, path: list[bytes]) -> bytes:
    """Fold an audit path back up the RFC's recursion (independent of RFC 9162's bit tricks)."""
    if n == 1:
        assert path == []
        return leaf
    k = 1
    while k * 2 < n:
        k *= 2
    *inner, sibling = path
    if m < k:
        return hashlib.sha256(b"\x01" + ref_root_from_path(m, k, leaf, inner) + sibling).digest()
    return hashlib.sha256(b"\x01" + sibling + ref_root_from_path(m - k, n - k, leaf, inner)).digest()


def ref_leaf_hash_root(leaf_hashes: list[bytes]) -> bytes:
    """MTH over leaves given already hashed (as tiles and get-proof-by-hash give them)."""
    n = len(leaf_hashes)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaf_hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + ref_leaf_hash_root(leaf_hashes[:k]) + ref_leaf_hash_root(leaf_hashes[k:])).digest()


def u24(data: bytes) -> bytes:
    return struct.pack(">I", len(data))[1:] + data


def ref_precert_sct_input(timestamp: int, issuer_key_hash: bytes, tbs: bytes, extensions: bytes) -> bytes:
    """RFC 6962 3.2 digitally-signed struct for a precert_entry."""
    return (
        struct.pack(">BBQH", 0, 0, timestamp, 1) + issuer_key_hash + u24(tbs) + struct.pack(">H", len(extensions))
        + extensions
    )  # fmt: skip


def ref_x509_sct_input(timestamp: int, certificate: bytes, extensions: bytes) -> bytes:
    return struct.pack(">BBQH", 0, 0, timestamp, 0) + u24(certificate) + struct.pack(">H", len(extensions)) + extensions


def ref_sth_input(timestamp: int, tree_size: int, root: bytes) -> bytes:
    """RFC 6962 3.5 TreeHeadSignature."""
    return struct.pack(">BBQQ", 0, 1, timestamp, tree_size) + root


def ref_digitally_signed(data: bytes) -> bytes:
    """The DER signature inside a TLS DigitallySigned, after checking SHA-256 (4) and ECDSA (3)."""
    hash_alg, sig_alg, length = struct.unpack(">BBH", data[:4])
    assert (hash_alg, sig_alg) == (4, 3)
    assert len(data) == 4 + length
    return data[4:]
