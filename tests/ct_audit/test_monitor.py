"""The audit's parts on their own: the compact range against an independent RFC 6962 2.1 transcription
(tests/ct/ct_reference.py), tree head signatures (RFC 6962 3.5, ECDSA and RSA, packed with ``struct``), and the
auditor against a scripted log that answers in short pages, serves a tampered entry, or a bad proof. On
SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from ct_reference import ref_mth, ref_sth_input
from sqlalchemy import select

from candor.clock import FakeClock
from candor.ct.audit import CtAuditor
from candor.ct.log.merkle import consistency_path, list_range_hash, root_of
from candor.ct.monitor import CompactRange, LogReader, RawEntry, TreeHead, TreeHeadError, verify_tree_head
from candor.ct.submit.loglist import LogInfo, LogKind, LogState
from candor.storage import Database
from candor.storage.models_ct_audit import CtAuditState

NOW_MS = 1_795_000_000_000


def leaf(n: int) -> bytes:
    """A MerkleTreeLeaf (RFC 6962 3.4) of an x509_entry whose "certificate" is no certificate: not Candor's."""
    certificate = b"not a certificate %d" % n
    return struct.pack(">BBQH", 0, 0, NOW_MS, 0) + len(certificate).to_bytes(3, "big") + certificate + b"\x00\x00"


def spki(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def signed_head(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, size: int, root: bytes) -> TreeHead:
    data = ref_sth_input(NOW_MS + size, size, root)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature, algorithm = key.sign(data, ec.ECDSA(hashes.SHA256())), 3
    else:
        signature, algorithm = key.sign(data, padding.PKCS1v15(), hashes.SHA256()), 1
    return TreeHead(size, NOW_MS + size, root, struct.pack(">BBH", 4, algorithm, len(signature)) + signature)


# -- the compact range --------------------------------------------------------------------------------------------
def test_the_compact_range_root_is_the_rfc_merkle_tree_hash_at_every_size_and_survives_storage() -> None:
    leaves = [os.urandom(12) for _ in range(70)]
    tree = CompactRange()
    assert tree.root() == ref_mth([])
    for n, data in enumerate(leaves, start=1):
        tree.append(hashlib.sha256(b"\x00" + data).digest())
        assert tree.root() == ref_mth(leaves[:n]), n
        assert len(tree.to_bytes()) == 32 * n.bit_count()  # one hash per perfect subtree
        resumed = CompactRange.from_bytes(n, tree.to_bytes())
        assert resumed.root() == tree.root()
    with pytest.raises(ValueError, match="a tree of size 5 is 2 perfect subtrees, not 3"):
        CompactRange.from_bytes(5, tree.to_bytes())  # 70 is three subtrees, 5 is two


# -- tree head signatures --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["ecdsa-p256", "rsa-2048"])
def test_a_tree_head_verifies_with_the_log_key_and_not_with_one_bit_changed(kind: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1()) if kind == "ecdsa-p256" else rsa.generate_private_key(65537, 2048)
    head = signed_head(key, 3, ref_mth([b"a", b"b", b"c"]))
    verify_tree_head(head, spki(key))
    for changed in (
        TreeHead(4, head.timestamp, head.root_hash, head.signature),
        TreeHead(3, head.timestamp + 1, head.root_hash, head.signature),
        TreeHead(3, head.timestamp, bytes([head.root_hash[0] ^ 1]) + head.root_hash[1:], head.signature),
    ):
        with pytest.raises(TreeHeadError, match="does not verify"):
            verify_tree_head(changed, spki(key))
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(TreeHeadError):
        verify_tree_head(head, spki(other))
    with pytest.raises(TreeHeadError, match="not SHA-256"):
        verify_tree_head(TreeHead(3, head.timestamp, head.root_hash, b"\x02" + head.signature[1:]), spki(key))


# -- the auditor against a scripted log -----------------------------------------------------------------------
@dataclass
class ScriptedLog:
    """An RFC 6962 log's read API in memory: at most *page* entries per get-entries, like a real log may."""

    key: ec.EllipticCurvePrivateKey
    leaves: list[bytes]
    page: int = 7
    served: dict[int, bytes] = field(default_factory=dict)  # entries served instead of the logged ones
    requests: list[tuple[int, int]] = field(default_factory=list)
    bad_proof: bool = False

    def get_sth(self) -> TreeHead:
        return signed_head(self.key, len(self.leaves), root_of([hashlib.sha256(b"\x00" + x).digest()
                                                                for x in self.leaves]))  # fmt: skip

    def get_consistency(self, first: int, second: int) -> list[bytes]:
        hashed = [hashlib.sha256(b"\x00" + x).digest() for x in self.leaves[:second]]
        proof = consistency_path(first, second, list_range_hash(hashed))
        return [bytes(32), *proof[1:]] if self.bad_proof else proof

    def get_entries(self, start: int, end: int) -> list[RawEntry]:
        self.requests.append((start, end))
        last = min(end, start + self.page - 1, len(self.leaves) - 1)
        return [RawEntry(i, self.served.get(i, self.leaves[i]), b"\x00\x00\x00") for i in range(start, last + 1)]

    def info(self) -> LogInfo:
        key_der = spki(self.key)
        return LogInfo("Scripted", "scripted", hashlib.sha256(key_der).digest(), key_der, "http://127.0.0.1:9/",
                       86400, LogState.USABLE, datetime(2026, 1, 1, tzinfo=UTC), LogKind.RFC6962)  # fmt: skip


def auditor(db: Database, log: ScriptedLog) -> CtAuditor:
    def reader(_info: LogInfo) -> LogReader:
        return log

    return CtAuditor(db=db, clock=FakeClock(), reader_for=reader)


def stored(db: Database, log: ScriptedLog) -> tuple[int, bytes] | None:
    with db.session() as session:
        state = session.scalars(select(CtAuditState).where(CtAuditState.log_id == log.info().log_id)).one_or_none()
        return None if state is None else (state.tree_size, state.root_hash)


def test_entries_come_in_the_short_pages_the_log_gives_and_the_next_run_continues_from_the_stored_range(
    db: Database,
) -> None:
    log = ScriptedLog(ec.generate_private_key(ec.SECP256R1()), [leaf(i) for i in range(40)] + [b"garbage"])
    report = auditor(db, log).audit(log.info())
    assert report.clean, report.summary()
    assert (report.entries_read, report.candor_entries, report.unreadable_entries) == (41, 0, 1)
    assert log.requests[:2] == [(0, 40), (7, 40)]  # asked for everything left; given 7 at a time
    assert len(log.requests) == 6
    assert stored(db, log) == (41, log.get_sth().root_hash)

    log.leaves += [leaf(i) for i in range(40, 45)]
    log.requests.clear()
    report = auditor(db, log).audit(log.info())
    assert report.clean and report.previous_size == 41 and report.entries_read == 5, report.summary()
    assert log.requests == [(41, 45)]
    assert stored(db, log) == (46, log.get_sth().root_hash)


def test_an_entry_served_other_than_the_one_in_the_tree_is_an_alert_and_nothing_is_stored(db: Database) -> None:
    log = ScriptedLog(ec.generate_private_key(ec.SECP256R1()), [leaf(i) for i in range(20)], served={13: leaf(99)})
    report = auditor(db, log).audit(log.info())
    assert [a.action for a in report.alerts] == ["ct.audit.inconsistent_log"], report.summary()
    assert "do not hash to the root its tree head signs (RFC 6962 2.1)" in report.alerts[0].message
    assert stored(db, log) is None


def test_a_consistency_proof_that_does_not_verify_is_an_alert_and_the_old_state_stays(db: Database) -> None:
    log = ScriptedLog(ec.generate_private_key(ec.SECP256R1()), [leaf(i) for i in range(6)])
    assert auditor(db, log).audit(log.info()).clean
    log.leaves += [leaf(6), leaf(7), leaf(8)]
    log.bad_proof = True
    report = auditor(db, log).audit(log.info())
    assert [a.action for a in report.alerts] == ["ct.audit.inconsistent_log"], report.summary()
    assert "no consistent extension of size 6" in report.alerts[0].message
    assert stored(db, log) == (6, root_of([hashlib.sha256(b"\x00" + x).digest() for x in log.leaves[:6]]))
    log.bad_proof = False
    assert auditor(db, log).audit(log.info()).clean  # an honest proof now: the log did extend the tree
    assert stored(db, log) == (9, log.get_sth().root_hash)
