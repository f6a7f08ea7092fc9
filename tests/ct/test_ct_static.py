"""The static-ct-api files: the checkpoint verifies as a signed note with the RFC 6962 tree head signature, and
the hash and data tiles rebuild exactly the tree the RFC 6962 API serves. Parsed here from the specs
(C2SP static-ct-api, tlog-tiles, tlog-checkpoint, signed-note), not with Candor's code."""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from ct_pki import Pki, certificate, precertificate
from ct_reference import ref_digitally_signed, ref_leaf_hash_root, ref_sth_input
from starlette.applications import Starlette
from starlette.testclient import TestClient

from candor.ct.log.app import ct_log_routes
from candor.ct.log.service import CtLog

Serial = Callable[[], int]


def read_checkpoint(text: str, log_id: bytes) -> tuple[str, int, bytes, int, bytes]:
    """(origin, size, root, timestamp, DER signature) from a checkpoint, checking the note's format."""
    body, _, signatures = text.rpartition("\n\n")
    origin, size, root = body.split("\n")
    [line] = signatures.rstrip("\n").split("\n")
    dash, name, encoded = line.split(" ")
    assert dash == "\u2014" and name == origin
    blob = base64.b64decode(encoded)
    key_id = hashlib.sha256(origin.encode() + b"\n\x05" + log_id).digest()[:4]
    assert blob[:4] == key_id
    (timestamp,) = struct.unpack(">Q", blob[4:12])
    return origin, int(size), base64.b64decode(root), timestamp, ref_digitally_signed(blob[12:])


def read_tile_leaves(data: bytes) -> list[tuple[bytes, bytes | None, list[bytes]]]:
    """static-ct-api TileLeaf: (TimestampedEntry, pre_certificate, chain fingerprints) for each entry."""
    leaves = []
    offset = 0
    while offset < len(data):
        start = offset
        entry_type = struct.unpack(">H", data[offset + 8 : offset + 10])[0]
        offset += 10
        if entry_type == 1:
            offset += 32  # issuer_key_hash
        offset += 3 + int.from_bytes(data[offset : offset + 3], "big")  # certificate or TBS
        offset += 2 + int.from_bytes(data[offset : offset + 2], "big")  # extensions
        timestamped_entry = data[start:offset]
        precert = None
        if entry_type == 1:
            length = int.from_bytes(data[offset : offset + 3], "big")
            precert = data[offset + 3 : offset + 3 + length]
            offset += 3 + length
        length = int.from_bytes(data[offset : offset + 2], "big")
        chain = [data[offset + 2 + i : offset + 2 + i + 32] for i in range(0, length, 32)]
        offset += 2 + length
        leaves.append((timestamped_entry, precert, chain))
    return leaves


def _fill(ct_log: CtLog, pki: Pki, serial: Serial, count: int) -> None:
    chains = [[precertificate(pki.issuer, serial()), pki.issuer.der] for _ in range(count - 1)]
    futures = [ct_log.submit(ct_log.check(chain, precertificate=True)) for chain in chains]
    futures.append(
        ct_log.submit(ct_log.check([certificate(pki.issuer, serial()), pki.issuer.der], precertificate=False))
    )
    for future in futures:
        future.result(timeout=30)


def test_static_tree_matches_the_rfc_6962_api(
    ct_log: CtLog, pki: Pki, serial: Serial, log_key: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    directory = tmp_path / "static"
    _fill(ct_log, pki, serial, 100)
    ct_log.integrate()
    _fill(ct_log, pki, serial, 200)
    head = ct_log.integrate()
    assert head.tree_size == 300
    origin, size, root, timestamp, signature = read_checkpoint((directory / "checkpoint").read_text(), ct_log.log_id)
    assert (origin, size, root, timestamp) == ("ct.example.test/ct/log-a", 300, head.root_hash, head.timestamp)
    log_key.public_key().verify(signature, ref_sth_input(timestamp, size, root), ec.ECDSA(hashes.SHA256()))
    # tlog-tiles layout for 300 leaves: full level-0 tile 000, partial 001 of width 44, partial level-1 tile.
    level0 = (directory / "tile/0/000").read_bytes() + (directory / "tile/0/001.p/44").read_bytes()
    assert len(level0) == 300 * 32
    hashes_ = [level0[i : i + 32] for i in range(0, len(level0), 32)]
    assert ref_leaf_hash_root(hashes_) == root
    assert (directory / "tile/1/000.p/1").read_bytes() == ref_leaf_hash_root(hashes_[:256])
    assert (directory / "tile/0/000.p/100").exists()  # the first round's partial tile stays valid
    # Data tiles: each TileLeaf rebuilds the leaf whose hash is in the level-0 tile.
    data = read_tile_leaves((directory / "tile/data/000").read_bytes())
    data += read_tile_leaves((directory / "tile/data/001.p/44").read_bytes())
    assert len(data) == 300
    api_leaves = [leaf for start in (0, 256) for leaf, _ in ct_log.entries(start, start + 255)]
    for index, (timestamped_entry, precert, chain) in enumerate(data):
        leaf = b"\x00\x00" + timestamped_entry  # MerkleTreeLeaf v1, timestamped_entry
        assert hashlib.sha256(b"\x00" + leaf).digest() == hashes_[index]
        assert leaf == api_leaves[index]
        assert (precert is None) == (index in (99, 299))  # each _fill ends with a certificate
        assert chain == [hashlib.sha256(pki.issuer.der).digest(), hashlib.sha256(pki.root.der).digest()]
    for fingerprint in data[0][2]:
        issuer = (directory / "issuer" / fingerprint.hex()).read_bytes()
        assert hashlib.sha256(issuer).digest() == fingerprint


def test_static_files_are_served_with_their_media_types(ct_log: CtLog, pki: Pki, serial: Serial) -> None:
    _fill(ct_log, pki, serial, 3)
    ct_log.integrate()
    app = Starlette(routes=ct_log_routes(ct_log, prefix="/ct/log-a"))
    with TestClient(app) as client:
        checkpoint = client.get("/ct/log-a/checkpoint")
        assert checkpoint.headers["content-type"] == "text/plain; charset=utf-8"
        assert checkpoint.text.split("\n")[1] == "3"
        tile = client.get("/ct/log-a/tile/0/000.p/3")
        assert tile.headers["content-type"] == "application/octet-stream" and len(tile.content) == 96
        assert client.get("/ct/log-a/tile/data/000.p/3").status_code == 200
        fingerprint = hashlib.sha256(pki.issuer.der).hexdigest()
        issuer = client.get(f"/ct/log-a/issuer/{fingerprint}")
        assert issuer.headers["content-type"] == "application/pkix-cert" and issuer.content == pki.issuer.der
        for missing in ("/ct/log-a/tile/0/001", "/ct/log-a/tile/0/..%2F..%2Fcheckpoint", "/ct/log-a/tile/0/000.p/0",
                        "/ct/log-a/issuer/..%2Fcheckpoint", f"/ct/log-a/issuer/{'0' * 64}"):  # fmt: skip
            assert client.get(missing).status_code == 404, missing
