"""The static-ct-api read path as files (C2SP static-ct-api, tlog-tiles, tlog-checkpoint, signed-note).

Under the log's directory: ``checkpoint``, ``tile/<L>/<N>[.p/<W>]`` (hash tiles), ``tile/data/<N>[.p/<W>]``
(data tiles) and ``issuer/<hex fingerprint>``, so any static web server or object store serves the monitoring
API. Every file is written to a temporary name, flushed to disk and renamed into place: a reader never sees
half a file, and a checkpoint is only ever renamed in after every tile it covers is on disk.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from pathlib import Path

from candor.ct.log import tls
from candor.ct.log.signer import SignedTreeHead
from candor.ct.log.store import StoredEntry
from candor.ct.log.tiles import TILE_WIDTH, tile_path
from candor.files import write_atomically as atomic_write

NOTE_SIGNATURE_TYPE_RFC6962 = 0x05  # C2SP signed-note: RFC 6962 TreeHeadSignature (static-ct-api)


def note_key_id(origin: str, log_id: bytes) -> bytes:
    """static-ct-api: SHA-256(key name || 0x0A || 0x05 || LogID)[:4], the key name being the origin."""
    return hashlib.sha256(origin.encode() + b"\n" + bytes([NOTE_SIGNATURE_TYPE_RFC6962]) + log_id).digest()[:4]


def checkpoint_body(origin: str, head: SignedTreeHead) -> str:
    """C2SP tlog-checkpoint: origin, tree size, base64 root hash, each on a line."""
    return f"{origin}\n{head.tree_size}\n{base64.b64encode(head.root_hash).decode()}\n"


def checkpoint(origin: str, log_id: bytes, head: SignedTreeHead) -> str:
    """The signed note: the body, a blank line, and one signature line whose signature is an
    RFC6962NoteSignature (uint64 timestamp, then the TreeHeadSignature's DigitallySigned)."""
    signature = head.timestamp.to_bytes(8, "big") + head.tree_head_signature()
    encoded = base64.b64encode(note_key_id(origin, log_id) + signature).decode()
    return f"{checkpoint_body(origin, head)}\n\u2014 {origin} {encoded}\n"


def tile_leaf(entry: StoredEntry) -> bytes:
    """static-ct-api TileLeaf: the TimestampedEntry, the precertificate (precert entries), the chain's
    fingerprints."""
    timestamped_entry = entry.leaf_input[2:]  # a MerkleTreeLeaf is version, leaf_type, TimestampedEntry
    precertificate = b""
    if entry.entry_type is tls.EntryType.PRECERT:
        assert entry.precertificate is not None
        precertificate = tls.opaque(entry.precertificate, 3)
    return timestamped_entry + precertificate + tls.opaque(b"".join(entry.chain), 2)


class StaticTree:
    """Writes a log's static files under *directory*."""

    def __init__(self, directory: Path, *, origin: str, log_id: bytes) -> None:
        self.directory = directory
        self.origin = origin
        self.log_id = log_id
        self._issuers_written: set[bytes] = set()

    def write_hash_tiles(self, tiles: Sequence[tuple[int, int, bytes]]) -> None:
        for level, index, hashes in tiles:
            atomic_write(self.directory / tile_path(level, index, len(hashes) // 32), hashes)

    def write_data_tile(self, index: int, leaves: Sequence[bytes]) -> None:
        if not 0 < len(leaves) <= TILE_WIDTH:
            raise ValueError(f"a data tile holds 1..{TILE_WIDTH} entries, not {len(leaves)}")
        atomic_write(self.directory / tile_path("data", index, len(leaves)), b"".join(leaves))

    def missing_issuers(self, fingerprints: Sequence[bytes]) -> set[bytes]:
        return {f for f in fingerprints if f not in self._issuers_written and not self._issuer_path(f).exists()}

    def write_issuer(self, fingerprint: bytes, der: bytes) -> None:
        if hashlib.sha256(der).digest() != fingerprint:
            raise ValueError("an issuer is published under its own SHA-256")
        atomic_write(self._issuer_path(fingerprint), der)
        self._issuers_written.add(fingerprint)

    def published_size(self) -> int | None:
        """The tree size of the checkpoint published here, if there is one to read (its second line)."""
        try:
            lines = (self.directory / "checkpoint").read_text(encoding="utf-8").split("\n")
            return int(lines[1]) if len(lines) > 1 and lines[1].isdigit() else None
        except (OSError, UnicodeDecodeError):
            return None

    def write_checkpoint(self, head: SignedTreeHead) -> None:
        atomic_write(self.directory / "checkpoint", checkpoint(self.origin, self.log_id, head).encode())

    def _issuer_path(self, fingerprint: bytes) -> Path:
        return self.directory / "issuer" / fingerprint.hex()
