"""The log service on SQLite and PostgreSQL: SCTs, deduplication, integration, tree heads, restarts."""

from __future__ import annotations

import base64
import hashlib
import itertools
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from ct_pki import Pki, certificate, leaf_builder, precertificate
from ct_reference import (
    ref_digitally_signed,
    ref_leaf_hash_root,
    ref_mth,
    ref_precert_sct_input,
    ref_root_from_path,
    ref_sth_input,
    ref_subproof,
    ref_x509_sct_input,
)

from candor.clock import FakeClock
from candor.ct.log.chain import SubmissionError
from candor.ct.log.merkle import verify_consistency
from candor.ct.log.service import CtLog, Sct
from candor.ct.log.tls import EntryType, leaf_index_of, parse_merkle_tree_leaf
from candor.storage import Database

Serial = Callable[[], int]


def _verify(key: ec.EllipticCurvePrivateKey, signature: bytes, data: bytes) -> None:
    key.public_key().verify(signature, data, ec.ECDSA(hashes.SHA256()))


def test_precertificate_sct_verifies_over_the_rfc_6962_input(
    ct_log: CtLog, pki: Pki, serial: Serial, log_key: ec.EllipticCurvePrivateKey
) -> None:
    number = serial()
    sct = ct_log.add_chain([precertificate(pki.issuer, number), pki.issuer.der], precertificate=True)
    assert sct.log_id == hashlib.sha256(ct_log.public_key_der).digest()
    # The TBS the log must sign: the same certificate built without the poison (RFC 6962 3.2), by cryptography.
    tbs = leaf_builder(pki.issuer.name, number).sign(pki.issuer.key, hashes.SHA256()).tbs_certificate_bytes
    extensions = bytes([0, 0, 5]) + (0).to_bytes(5, "big")  # static-ct-api leaf_index 0
    assert sct.extensions == extensions
    _verify(log_key, sct.signature, ref_precert_sct_input(sct.timestamp, pki.issuer.spki_sha256, tbs, extensions))
    wire = sct.to_json()
    assert wire["sct_version"] == 0
    assert ref_digitally_signed(base64.b64decode(str(wire["signature"]))) == sct.signature


def test_certificate_sct_verifies_over_the_rfc_6962_input(
    ct_log: CtLog, pki: Pki, serial: Serial, log_key: ec.EllipticCurvePrivateKey
) -> None:
    der = certificate(pki.issuer, serial())
    sct = ct_log.add_chain([der, pki.issuer.der, pki.root.der], precertificate=False)
    _verify(log_key, sct.signature, ref_x509_sct_input(sct.timestamp, der, sct.extensions))


def test_resubmission_returns_the_same_sct_and_adds_nothing(
    ct_log: CtLog, pki: Pki, serial: Serial, clock: FakeClock
) -> None:
    chain = [precertificate(pki.issuer, serial()), pki.issuer.der]
    first = ct_log.add_chain(chain, precertificate=True)
    ct_log.integrate()
    clock.advance(timedelta(seconds=5))
    again = ct_log.add_chain(chain, precertificate=True)
    also_with_root = ct_log.add_chain([*chain, pki.root.der], precertificate=True)
    assert again == first == also_with_root
    assert ct_log.integrate().tree_size == 1


@pytest.mark.parametrize("count", [3, 20])  # a few: one statement each; many: IN lists
def test_a_batch_of_stored_submissions_gets_their_stored_scts(
    ct_log: CtLog, db: Database, pki: Pki, serial: Serial, clock: FakeClock, count: int
) -> None:
    submissions = [
        ct_log.check([precertificate(pki.issuer, serial()), pki.issuer.der], precertificate=True) for _ in range(count)
    ]
    with db.connection() as connection:
        first, known = ct_log.append(connection, submissions)
    ct_log.stored(first, known)
    clock.advance(timedelta(seconds=5))
    fresh = ct_log.check([precertificate(pki.issuer, serial()), pki.issuer.der], precertificate=True)
    with db.connection() as connection:
        again, _ = ct_log.append(connection, [*reversed(submissions), fresh])
    assert again[:count] == list(reversed(first))
    assert again[count].leaf_index == count and again[count].timestamp > first[0].timestamp
    assert ct_log.integrate().tree_size == count + 1


def test_identical_submissions_in_one_batch_share_one_entry(ct_log: CtLog, pki: Pki, serial: Serial) -> None:
    submission = ct_log.check([precertificate(pki.issuer, serial()), pki.issuer.der], precertificate=True)
    futures = [ct_log.submit(submission) for _ in range(5)]
    results = {future.result(timeout=10) for future in futures}
    assert len(results) == 1
    assert ct_log.integrate().tree_size == 1


def test_entries_are_integrated_and_the_tree_head_verifies(
    ct_log: CtLog, pki: Pki, serial: Serial, log_key: ec.EllipticCurvePrivateKey
) -> None:
    empty = ct_log.head()
    assert empty.tree_size == 0
    _verify(log_key, empty.signature, ref_sth_input(empty.timestamp, 0, hashlib.sha256(b"").digest()))
    scts = [
        ct_log.add_chain([precertificate(pki.issuer, serial()), pki.issuer.der], precertificate=True) for _ in range(5)
    ]
    assert ct_log.head().tree_size == 0  # stored, with SCTs given, not yet integrated
    head = ct_log.integrate()
    assert head.tree_size == 5 and head.timestamp >= max(s.timestamp for s in scts)
    _verify(log_key, head.signature, ref_sth_input(head.timestamp, 5, head.root_hash))
    leaves = [leaf for leaf, _ in ct_log.entries(0, 4)]
    hashes_ = [hashlib.sha256(b"\x00" + leaf).digest() for leaf in leaves]
    assert ref_leaf_hash_root(hashes_) == head.root_hash
    for index, (leaf, sct) in enumerate(zip(leaves, scts, strict=True)):
        parsed = parse_merkle_tree_leaf(leaf)
        assert parsed.timestamp == sct.timestamp and parsed.extensions == sct.extensions
        found, path = ct_log.proof_by_hash(hashes_[index], 5)
        assert found == index
        assert ref_root_from_path(index, 5, hashes_[index], path) == head.root_hash


def test_consistency_between_successive_tree_heads(ct_log: CtLog, pki: Pki, serial: Serial) -> None:
    heads = []
    for batch in (3, 1, 4, 8):
        for _ in range(batch):
            ct_log.add_chain([precertificate(pki.issuer, serial()), pki.issuer.der], precertificate=True)
        heads.append(ct_log.integrate())
    leaves = [leaf for leaf, _ in ct_log.entries(0, 15)]
    for older, newer in itertools.pairwise(heads):
        assert ref_mth(leaves[: older.tree_size]) == older.root_hash
        proof = ct_log.consistency(older.tree_size, newer.tree_size)
        assert proof == ref_subproof(older.tree_size, leaves[: newer.tree_size], True)
        verify_consistency(older.tree_size, newer.tree_size, older.root_hash, newer.root_hash, proof)


@pytest.mark.parametrize(
    "case",
    ["unknown root", "certificate to add-pre-chain", "precertificate to add-chain", "garbage", "broken link",
     "not a CA", "precert signing certificate", "non-critical poison", "empty"],
)  # fmt: skip
def test_refused_submissions_add_nothing(ct_log: CtLog, pki: Pki, serial: Serial, case: str) -> None:
    number = serial()
    chains: dict[str, tuple[list[bytes], bool]] = {
        "unknown root": ([precertificate(pki.stranger, number), pki.stranger.der, pki.other_root.der], True),
        "certificate to add-pre-chain": ([certificate(pki.issuer, number), pki.issuer.der], True),
        "precertificate to add-chain": ([precertificate(pki.issuer, number), pki.issuer.der], False),
        "garbage": ([b"\x30\x03\x02\x01\x00", pki.issuer.der], True),
        "broken link": ([precertificate(pki.issuer, number), pki.stranger.der], True),
        "not a CA": ([precertificate(pki.not_a_ca, number), pki.not_a_ca.der], True),
        "precert signing certificate": (
            [precertificate(pki.precert_signer, number), pki.precert_signer.der, pki.issuer.der], True
        ),
        "non-critical poison": ([precertificate(pki.issuer, number, critical=False), pki.issuer.der], True),
        "empty": ([], True),
    }  # fmt: skip
    chain, precert = chains[case]
    with pytest.raises(SubmissionError):
        ct_log.check(chain, precertificate=precert)
    assert ct_log.pending() == 0 and ct_log.integrate().tree_size == 0


def test_entries_survive_a_stop_before_integration(
    make_log: Callable[..., CtLog], pki: Pki, serial: Serial, db: Database
) -> None:
    first = make_log()
    sct = first.add_chain([precertificate(pki.issuer, serial()), pki.issuer.der], precertificate=True)
    # No integration, no close: what a crash leaves. A new instance on the same database includes it.
    second = make_log()
    head = second.head()
    assert head.tree_size == 1
    leaf, _ = second.entries(0, 0)[0]
    assert parse_merkle_tree_leaf(leaf).timestamp == sct.timestamp
    third = make_log()  # and the tree reloads from its stored tiles, not rehashed
    assert third.head().root_hash == head.root_hash and third.head().tree_size == 1


def test_background_sequencer_integrates_within_the_merge_delay(
    make_log: Callable[..., CtLog], pki: Pki, serial: Serial
) -> None:
    ct_log = make_log(background=True, integrate_interval=timedelta(milliseconds=50), mmd=timedelta(seconds=2))
    started = time.monotonic()
    sct: Sct = ct_log.add_chain([precertificate(pki.issuer, serial()), pki.issuer.der], precertificate=True)
    while ct_log.head().tree_size < 1:
        assert time.monotonic() - started < 2.0, "not integrated within the maximum merge delay"
        time.sleep(0.01)
    assert sct.extensions[-1] == 0


def test_entries_carry_the_chain_and_the_precertificate(ct_log: CtLog, pki: Pki, serial: Serial) -> None:
    precert = precertificate(pki.issuer, serial())
    ct_log.add_chain([precert, pki.issuer.der], precertificate=True)
    ct_log.integrate()
    leaf, extra = ct_log.entries(0, 0)[0]
    assert parse_merkle_tree_leaf(leaf).entry.entry_type is EntryType.PRECERT
    # PrecertChainEntry: the precertificate, then the chain with the root the log added (RFC 6962 4.6)
    assert extra[:3] == len(precert).to_bytes(3, "big") and extra[3 : 3 + len(precert)] == precert
    chain = extra[3 + len(precert) :]
    assert pki.issuer.der in chain and pki.root.der in chain


def test_a_second_process_stores_submissions_and_follows_the_tree_heads_it_never_signs(
    make_log: Callable[..., CtLog], pki: Pki, serial: Serial
) -> None:
    """What `candor serve`'s other workers do: both log objects store submissions (leaf indexes allocated under
    the log row's lock, so contiguous and unique), only the sequencing one integrates and signs, and the follower
    serves its heads, entries and proofs, following at once when a request names a tree larger than its own."""
    primary = make_log()
    follower = make_log(sequence=False)
    scts = [
        (primary if number % 2 else follower).add_chain(
            [precertificate(pki.issuer, serial()), pki.issuer.der], precertificate=True
        )
        for number in range(6)
    ]
    assert sorted(leaf_index_of(sct.extensions) for sct in scts) == list(range(6))
    assert follower.head().tree_size == 0  # the primary's first head
    with pytest.raises(RuntimeError):
        follower.integrate()
    head = primary.integrate()
    assert head.tree_size == 6
    leaves = [leaf for leaf, _ in follower.entries(0, 5)]  # names leaf 0: the follower takes the new head
    assert follower.head() == head
    hashes_ = [hashlib.sha256(b"\x00" + leaf).digest() for leaf in leaves]
    for index, leaf_hash_ in enumerate(hashes_):
        assert follower.proof_by_hash(leaf_hash_, 6) == primary.proof_by_hash(leaf_hash_, 6)
        assert follower.proof_by_hash(leaf_hash_, 6)[0] == index
    primary.add_chain([precertificate(pki.issuer, serial()), pki.issuer.der], precertificate=True)
    newer = primary.integrate()
    assert follower.consistency(6, 7) == primary.consistency(6, 7)  # tree 7 is newer than the follower's
    assert follower.head() == newer


def test_logs_sharing_a_writer_store_what_both_were_given_meanwhile_in_one_transaction(
    shared_logs: list[tuple[CtLog, ec.EllipticCurvePrivateKey]],
    db: Database,
    pki: Pki,
    serial: Serial,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`candor serve`'s two logs share the CA's database: a batch holding submissions to both is one transaction
    (one commit, one turn of SQLite's write lock) instead of one per log, and each log still gets exactly its
    own entries, contiguous leaf indexes and SCTs signed with its own key."""
    from sqlalchemy import event

    from candor.ct.log import store

    commits = itertools.count()
    committed = [0]
    event.listen(db.engine, "commit", lambda _connection: committed.__setitem__(0, next(commits) + 1))
    appended: list[tuple[int, int]] = []  # (transactions committed before, log row)
    real_append = store.append_batch

    def append_batch(connection, log, submissions, **kwargs):  # type: ignore[no-untyped-def]
        appended.append((committed[0], log))
        return real_append(connection, log, submissions, **kwargs)

    monkeypatch.setattr(store, "append_batch", append_batch)
    chains = [[precertificate(pki.issuer, serial()), pki.issuer.der] for _ in range(40)]
    futures = [
        (ct_log, key, chain, ct_log.submit(ct_log.check(chain, precertificate=True)))
        for chain in chains
        for ct_log, key in shared_logs
    ]
    by_log: dict[bytes, list[int]] = {}
    for ct_log, key, _chain, future in futures:
        sct = future.result(timeout=30)
        assert sct.log_id == ct_log.log_id
        _verify(key, sct.signature, ct_log_sct_input(sct, _chain, pki))
        index = leaf_index_of(sct.extensions)
        assert index is not None
        by_log.setdefault(ct_log.log_id, []).append(index)
    for ct_log, _ in shared_logs:
        assert sorted(by_log[ct_log.log_id]) == list(range(40))
        assert ct_log.integrate().tree_size == 40
    rows = {ct_log.row for ct_log, _ in shared_logs}
    per_transaction: dict[int, set[int]] = {}
    for before, row in appended:
        per_transaction.setdefault(before, set()).add(row)
    assert any(logs == rows for logs in per_transaction.values()), per_transaction
    assert len(per_transaction) < 80


def ct_log_sct_input(sct: Sct, chain: list[bytes], pki: Pki) -> bytes:
    """RFC 6962 3.2: the input an SCT for the precertificate *chain*[0] signs (reference implementation)."""
    from cryptography import x509

    precert = x509.load_der_x509_certificate(chain[0])
    tbs = leaf_builder(pki.issuer.name, precert.serial_number).sign(pki.issuer.key, hashes.SHA256())
    return ref_precert_sct_input(sct.timestamp, pki.issuer.spki_sha256, tbs.tbs_certificate_bytes, sct.extensions)
