"""End to end: the signer issues through CtSubmitter against two real Candor RFC 6962 logs served over HTTP on
loopback (different operators and keys). The final certificate embeds 2 SCTs that verify (here, with
cryptography's TBS reconstruction, and with OpenSSL's CT validator), is then logged by both logs, and a log
that is down makes issuance fail closed with the precertificate stored and revocable."""

from __future__ import annotations

import base64
import datetime
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from issuing import CA, build_home, csr_for, new_key, open_ca
from sqlalchemy import select
from submit_support import ServedLog, free_port, log_item, operator, serve_log

from candor.audit import AuditLog
from candor.clock import SystemClock
from candor.ct.log import tls
from candor.ct.submit.client import CtSubmitter
from candor.ct.submit.final import FinalSubmissions, run_drain_loop
from candor.ct.submit.local import LocalLog, LocalLogs
from candor.ct.submit.loglist import load_log_list
from candor.ct.submit.sct import embedded_scts, precert_entry, verify_sct
from candor.ct.submit.settings import CtLogOverride, CtSubmitSettings
from candor.ct.submit.transport import HttpAnswer, TransportError
from candor.errors import CandorError, ErrorKind
from candor.issuance import Signer
from candor.revocation import RevocationReason, revoke
from candor.signing.der import assemble_certificate
from candor.storage import orders, repositories, serial_to_hex
from candor.storage.models import AuditEvent, SerialRecord
from candor.storage.models_ct_submit import CtSubmission
from support import openssl

SETTINGS = {"backoff_seconds": 0.05, "max_backoff_seconds": 0.2, "attempt_timeout_seconds": 3, "attempts": 3}


class LateSource:
    """The signer's SctSource, pointed at a submitter once the CA (and its clock and database) exists."""

    def __init__(self) -> None:
        self.target: CtSubmitter | None = None

    def obtain(self, precertificate: x509.Certificate, issuer: x509.Certificate) -> bytes:
        assert self.target is not None
        return self.target.obtain(precertificate, issuer)


@dataclass
class World:
    ca: CA
    logs: list[ServedLog]
    submitter: CtSubmitter
    log_list: Path


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_home(tmp_path_factory.mktemp("ct-submit-ca"), private=False)


def write_log_list(path: Path, logs: list[tuple[ServedLog, str]]) -> Path:
    """A v3 log list naming each (log, url): one operator per log."""
    document = {"operators": [operator(log.operator, [log_item(log.key, description=log.name, url=url)])
                              for log, url in logs]}  # fmt: skip
    path.write_text(json.dumps(document))
    return path


def ca_certificates(ca: CA) -> list[x509.Certificate]:
    with ca.db.session() as session:
        return [x509.load_der_x509_certificate(i.certificate_der) for i in repositories.list_issuers(session)]


@pytest.fixture
def world(home: Path, tmp_path: Path) -> Iterator[World]:
    source = LateSource()
    # OpenSSL checks SCT timestamps against the real time: the fake clock starts at it (and never moves ahead).
    ca = open_ca(home, now=SystemClock().now(), sct_source=source)
    root = x509.load_pem_x509_certificate(ca.root_pem.read_bytes())
    with (
        serve_log("log-a", "Operator A", roots=[root], clock=ca.clock, work=tmp_path) as log_a,
        serve_log("log-b", "Operator B", roots=[root], clock=ca.clock, work=tmp_path) as log_b,
    ):
        log_list = write_log_list(tmp_path / "log_list.json", [(log_a, log_a.url), (log_b, log_b.url)])
        settings = CtSubmitSettings(log_list=Path("log_list.json"), **SETTINGS)  # type: ignore[arg-type]
        submitter = CtSubmitter.from_settings(
            settings, data_dir=tmp_path, clock=ca.clock, ca_certificates=ca_certificates(ca), db=ca.db
        )
        assert submitter is not None
        source.target = submitter
        opened = World(ca, [log_a, log_b], submitter, log_list)
        try:
            yield opened
        finally:
            submitter.close()
            opened.submitter.close()  # a test may have replaced it
            ca.stores.close()
            ca.db.dispose()


def logged_certificates(log: ServedLog) -> list[bytes]:
    """The x509_entry certificates of a log's integrated entries (RFC 6962 3.4)."""
    leaves = [tls.parse_merkle_tree_leaf(leaf) for leaf in log.entries()]
    return [leaf.entry.certificate for leaf in leaves if leaf.entry.entry_type is tls.EntryType.X509]


def test_the_signer_embeds_two_verified_scts_and_the_final_certificate_reaches_both_logs(
    world: World, tmp_path: Path
) -> None:
    key = new_key()
    issued = world.ca.issue(["ct-e2e.example.com"], key=key)
    final, issuer = issued.certificate, issued.chain[0]
    scts = embedded_scts(final)
    assert len(scts) == 2
    assert {s.log_id for s in scts} == {log.ct_log.log_id for log in world.logs}
    # An independent reconstruction of the signed entry: cryptography's TBS without the SCT list (RFC 6962 3.2).
    issuer_key_hash = precert_entry(final, issuer).issuer_key_hash
    entry = tls.SignedEntry(tls.EntryType.PRECERT, issuer_key_hash=issuer_key_hash,
                            tbs_certificate=final.tbs_precertificate_bytes)  # fmt: skip
    for sct in scts:
        listed = world.submitter.log_list.by_id(sct.log_id)
        assert listed is not None
        verify_sct(sct, listed, entry, now=world.ca.clock.now())
    parsed = final.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value
    assert len(parsed) == 2  # cryptography reads the list the signer embedded

    final_submissions = FinalSubmissions(db=world.ca.db, submitter=world.submitter, clock=world.ca.clock)
    outcomes = final_submissions.submit_final(final)
    assert sorted((o.log.description, o.sct is not None) for o in outcomes) == [("log-a", True), ("log-b", True)]
    der = final.public_bytes(Encoding.DER)
    for log in world.logs:
        assert der in logged_certificates(log)
    assert final_submissions.pending() == []
    assert final_submissions.submit_final(final) == []  # already done: nothing is sent twice

    if shutil.which("openssl") is not None:
        assert_openssl_sees_two_valid_scts(world, final, issuer, key, tmp_path)


def test_a_log_down_at_final_submission_is_retried_from_the_durable_queue(world: World, tmp_path: Path) -> None:
    final = world.ca.issue(["ct-queue.example.com"]).certificate
    log_b = world.logs[1]
    dead = CtSubmitter(
        world.submitter.log_list, clock=world.ca.clock,
        settings=CtSubmitSettings(**SETTINGS, logs=[CtLogOverride(  # type: ignore[arg-type]
            log_id=base64.b64encode(log_b.ct_log.log_id).decode(), url=f"http://127.0.0.1:{free_port()}/")]),
    )  # fmt: skip
    try:
        outcomes = FinalSubmissions(db=world.ca.db, submitter=dead, clock=world.ca.clock).submit_final(final)
    finally:
        dead.close()
    assert {o.log.description: o.sct is not None for o in outcomes} == {"log-a": True, "log-b": False}
    # A new process: a fresh queue object over the same database, with log-b reachable again.
    restarted = FinalSubmissions(db=world.ca.db, submitter=world.submitter, clock=world.ca.clock)
    [row] = restarted.pending()
    assert (row.log_description, row.attempts, row.done) == ("log-b", 1, False)
    assert row.last_error is not None and "connection refused" in row.last_error
    assert row.next_attempt_at == world.ca.clock.now() + timedelta(seconds=30)
    assert restarted.drain(world.ca.clock.now()).submitted == 0  # not due yet
    report = restarted.drain(world.ca.clock.now() + timedelta(seconds=30))
    assert (report.submitted, report.failed, report.pending) == (1, 0, 0)
    assert final.public_bytes(Encoding.DER) in logged_certificates(log_b)
    with world.ca.db.session() as session:
        rows = session.scalars(select(CtSubmission).where(CtSubmission.log_id == log_b.ct_log.log_id)).all()
    assert [r.done for r in rows if r.certificate_sha256 == final.fingerprint(hashes.SHA256()).hex()] == [True]


def test_the_signer_queues_the_final_certificate_for_its_logs_with_it_and_the_woken_drain_loop_pays(
    world: World,
) -> None:
    """Wired as `candor serve` wires it (the submitter is the signer's SctSource and FinalQueue), the transaction
    that stores the final certificate also stores what it owes each log whose SCT it embeds, so nothing is lost
    if the process dies before submitting; the drain loop, woken, logs it in both logs long before its 30 s
    interval, and finalize itself never waited for a log."""
    old = world.ca.signer
    signer = Signer(db=old.db, issuers=old.issuers, clock=old.clock, settings=old.settings, actor="test",
                    sct_source=world.submitter)  # fmt: skip
    final_submissions = FinalSubmissions(db=world.ca.db, submitter=world.submitter, clock=world.ca.clock)
    stop = threading.Event()
    loop = threading.Thread(target=run_drain_loop, args=(final_submissions,),
                            kwargs={"clock": world.ca.clock, "stop": stop})  # fmt: skip
    loop.start()
    try:
        time.sleep(1)  # its first pass found nothing due; the next is 30 s away unless it is woken
        final = replace(world.ca, signer=signer).issue(["ct-queued.example.com"]).certificate
        der = final.public_bytes(Encoding.DER)
        with world.ca.db.session() as session:
            rows = session.scalars(
                select(CtSubmission).where(CtSubmission.certificate_sha256 == final.fingerprint(hashes.SHA256()).hex())
            ).all()
        assert sorted((r.log_description, r.done, r.attempts) for r in rows) == [
            ("log-a", False, 0), ("log-b", False, 0)
        ]  # fmt: skip
        final_submissions.wake()
        deadline = time.monotonic() + 10
        while final_submissions.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        loop.join(timeout=10)
    assert final_submissions.pending() == []
    for log in world.logs:
        assert der in logged_certificates(log)


def test_a_drain_pass_that_finds_nothing_due_writes_nothing(world: World) -> None:
    """candor serve's primary looks every second for what other workers queued: when nothing is due that look is
    read-only (on SQLite it never takes the write lock the signer and the logs queue on)."""
    from sqlalchemy import event

    final = world.ca.issue(["ct-nothing-due.example.com"]).certificate
    final_submissions = FinalSubmissions(db=world.ca.db, submitter=world.submitter, clock=world.ca.clock)
    final_submissions.submit_final(final)
    commits = [0]

    def count(_connection: object) -> None:
        commits[0] += 1

    event.listen(world.ca.db.engine, "commit", count)
    try:
        report = final_submissions.drain(world.ca.clock.now())
    finally:
        event.remove(world.ca.db.engine, "commit", count)
    assert (report.submitted, report.failed, commits[0]) == (0, 0, 0)


def test_with_one_log_down_issuance_fails_closed_and_the_precertificate_stays_revocable(
    world: World, tmp_path: Path
) -> None:
    log_a = world.logs[0]
    down = write_log_list(
        tmp_path / "down.json", [(log_a, log_a.url), (world.logs[1], f"http://127.0.0.1:{free_port()}/")]
    )
    world.submitter.close()
    world.submitter = CtSubmitter.from_settings(  # type: ignore[assignment]
        CtSubmitSettings(log_list=down, **SETTINGS),  # type: ignore[arg-type]
        data_dir=tmp_path, clock=world.ca.clock, ca_certificates=ca_certificates(world.ca), db=world.ca.db,
    )  # fmt: skip
    source = world.ca.signer.sct_source
    assert isinstance(source, LateSource)
    source.target = world.submitter
    account = world.ca.account("acct-ct-down")
    world.ca.authorize(account, "ct-down.example.com", method="3.2.2.4.7")
    order_id = world.ca.order(account, ["ct-down.example.com"])
    started = time.monotonic()
    with pytest.raises(CandorError) as caught:
        world.ca.signer.finalize(order_id, csr_for(["ct-down.example.com"]))
    assert time.monotonic() - started >= 0.05 + 0.1  # it waited through its backoffs (3 attempts) first
    assert caught.value.kind is ErrorKind.UNAVAILABLE
    assert "log-b: connection refused after 3 attempt(s)" in caught.value.message
    with world.ca.db.session() as session:
        issuance = orders.issuance_for_order(session, order_id)
        assert issuance is not None
        serial_id = issuance.serial_id
        assert orders.find_certificate_der(session, serial_id, "certificate") is None  # no final certificate
        precert_der = orders.find_certificate_der(session, serial_id, "precertificate")
        assert precert_der is not None
        serial = x509.load_der_x509_certificate(precert_der).serial_number
        issuer = repositories.issuer_by_name(session, "tls-e1")
        assert issuer is not None
        revoked = revoke(session, audit=AuditLog(world.ca.clock), actor="test", issuer=issuer, serial=serial,
                         reason=RevocationReason.SUPERSEDED, now=world.ca.clock.now())  # fmt: skip
        assert revoked
        record = session.get(SerialRecord, serial_id)
        assert record is not None and record.status == "revoked"


def test_the_audit_event_of_a_submission_is_written_with_the_final_intent_that_stores_its_scts(world: World) -> None:
    """The submitter as the signer's RecordingSctSource: its ct.precertificate.submitted event is written in the
    transaction that stores the SCT list, one write transaction less per certificate than through a plain
    SctSource (which writes it in a transaction of its own). A failure is recorded at once (test above)."""
    from sqlalchemy import event

    commits = [0]

    def count(_connection: object) -> None:
        commits[0] += 1

    old = world.ca.signer
    direct = Signer(db=old.db, issuers=old.issuers, clock=old.clock, settings=old.settings, actor="test",
                    sct_source=world.submitter)  # fmt: skip
    event.listen(world.ca.db.engine, "commit", count)
    try:
        counted = {}
        for label, ca in (("plain", world.ca), ("recording", replace(world.ca, signer=direct))):
            before = commits[0]
            final = ca.issue([f"ct-{label}-audit.example.com"]).certificate
            counted[label] = commits[0] - before
            with world.ca.db.session() as session:
                events = session.scalars(
                    select(AuditEvent)
                    .where(
                        AuditEvent.action.in_(["ct.precertificate.submitted", "issuance.final_intent"]),
                        AuditEvent.details.contains(serial_to_hex(final.serial_number)),
                    )
                    .order_by(AuditEvent.seq)
                ).all()
            assert [(e.action, e.outcome) for e in events] == [
                ("ct.precertificate.submitted", "success"), ("issuance.final_intent", "info")
            ]  # fmt: skip
    finally:
        event.remove(world.ca.db.engine, "commit", count)
    assert counted["recording"] == counted["plain"] - 1, counted


def test_a_submission_is_audited_even_when_the_final_intent_fails_after_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The precertificate is in the logs once the SCTs are back: its ct.precertificate.submitted event is written
    in a transaction of its own when the final-intent stage that would have carried it fails."""
    from candor.issuance import progress

    old = world.ca.signer
    direct = Signer(db=old.db, issuers=old.issuers, clock=old.clock, settings=old.settings, actor="test",
                    sct_source=world.submitter)  # fmt: skip

    def refuse(*_args: object, **_kwargs: object) -> object:
        raise CandorError(ErrorKind.INTERNAL, "the final TBS does not correspond (test)")

    def submitted() -> int:
        with world.ca.db.session() as session:
            return len(
                session.scalars(select(AuditEvent.seq).where(AuditEvent.action == "ct.precertificate.submitted")).all()
            )

    before = submitted()
    monkeypatch.setattr(progress.signing, "corresponding_final", refuse)
    with pytest.raises(CandorError, match="does not correspond"):
        replace(world.ca, signer=direct).issue(["ct-failed-intent.example.com"])
    assert submitted() == before + 1


# -- logs served by this process (candor serve's embedded default) -------------------------------------------
class Served(LocalLogs):
    """The logs handed to the submitter as `candor serve` hands its own (by submission URL), with every POST that
    reaches the transport counted; nothing goes over HTTP."""

    def __init__(self, logs: dict[str, LocalLog]) -> None:
        super().__init__(logs, fallback=NoHttp())
        self.posts: list[str] = []

    def post_json(self, url: str, body: bytes, *, timeout: float) -> HttpAnswer:
        self.posts.append(url)
        return super().post_json(url, body, timeout=timeout)


class NoHttp:
    def post_json(self, url: str, body: bytes, *, timeout: float) -> HttpAnswer:
        raise TransportError(f"no HTTP in this test: {url}")


class StoresLateOnce:
    """A log served here whose first write fails after it took the chain (its database was busy)."""

    def __init__(self, ct_log: LocalLog) -> None:
        self.ct_log, self.failed = ct_log, False

    def check(self, ders: list[bytes], *, precertificate: bool) -> object:
        return self.ct_log.check(ders, precertificate=precertificate)

    def submit(self, submission: object) -> Future[object]:
        if self.failed:
            return self.ct_log.submit(submission)
        self.failed = True
        failed: Future[object] = Future()
        failed.set_exception(CandorError(ErrorKind.UNAVAILABLE, "database is locked"))
        return failed

    def add_chain(self, ders: list[bytes], *, precertificate: bool, timeout: float = 30.0) -> object:
        return self.ct_log.add_chain(ders, precertificate=precertificate, timeout=timeout)


def served_here(world: World, transport: Served, log_list: Path | None = None) -> tuple[CtSubmitter, CA]:
    """A submitter reaching *world*'s logs through *transport*, and the CA with a signer that uses it."""
    submitter = CtSubmitter(
        load_log_list(log_list or world.log_list), clock=world.ca.clock,
        settings=CtSubmitSettings(**SETTINGS),  # type: ignore[arg-type]
        ca_certificates=ca_certificates(world.ca), transport=transport, db=world.ca.db,
    )  # fmt: skip
    old = world.ca.signer
    signer = Signer(db=old.db, issuers=old.issuers, clock=old.clock, settings=old.settings, actor="test",
                    sct_source=submitter)  # fmt: skip
    return submitter, replace(world.ca, signer=signer)


def test_the_logs_served_here_are_handed_each_chain_directly_and_their_scts_are_verified(world: World) -> None:
    """candor serve's own logs get the precertificate and the final certificate from the caller's thread, without
    a POST through the transport (no JSON, no thread hop); the SCTs are embedded only once verified."""
    transport = Served({log.url: log.ct_log for log in world.logs})
    submitter, ca = served_here(world, transport)
    try:
        final = ca.issue(["ct-local.example.com"]).certificate
        final_submissions = FinalSubmissions(db=ca.db, submitter=submitter, clock=ca.clock)
        report = final_submissions.drain(ca.clock.now())
        owed = {row.certificate_sha256 for row in final_submissions.pending()}  # other tests' logs are gone
    finally:
        submitter.close()
    assert transport.posts == []
    assert {s.log_id for s in embedded_scts(final)} == {log.ct_log.log_id for log in world.logs}
    assert (report.submitted, report.failed) == (2, 0)
    assert final.fingerprint(hashes.SHA256()).hex() not in owed
    for log in world.logs:
        assert final.public_bytes(Encoding.DER) in logged_certificates(log)


def test_an_sct_from_a_log_served_here_counts_only_if_it_verifies_with_the_listed_key(
    world: World, tmp_path: Path
) -> None:
    """The log list names log-b with another key than the one log-b signs with: its SCT is refused, as any log's
    would be, the policy (two operators) is not met, and nothing is finalised."""
    log_a, log_b = world.logs
    impostor = replace(log_b, key=ec.generate_private_key(ec.SECP256R1()))
    listed = write_log_list(tmp_path / "listed.json", [(log_a, log_a.url), (impostor, log_b.url)])
    transport = Served({log.url: log.ct_log for log in world.logs})
    submitter, ca = served_here(world, transport, listed)
    try:
        with pytest.raises(CandorError) as caught:
            ca.issue(["ct-impostor.example.com"])
    finally:
        submitter.close()
    assert caught.value.kind is ErrorKind.UNAVAILABLE
    assert "log-b: rejected SCT: the SCT's log ID is not this log's" in caught.value.message
    assert transport.posts == []


def test_a_log_served_here_that_fails_to_store_is_asked_again_through_the_transport(world: World) -> None:
    log_a, log_b = world.logs
    transport = Served({log_a.url: log_a.ct_log, log_b.url: StoresLateOnce(log_b.ct_log)})
    submitter, ca = served_here(world, transport)
    try:
        final = ca.issue(["ct-retried.example.com"]).certificate
    finally:
        submitter.close()
    assert len(embedded_scts(final)) == 2
    assert transport.posts == [f"{log_b.url}ct/v1/add-pre-chain"]  # the second attempt, after the backoff
    with ca.db.session() as session:
        event = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "ct.precertificate.submitted",
                AuditEvent.subject == f"serial {serial_to_hex(final.serial_number)}",
            )
        ).one()
    logs = {entry["log"]: entry for entry in json.loads(event.details)["logs"]}
    assert (logs["log-a"]["attempts"], logs["log-b"]["attempts"]) == (1, 2)


# -- OpenSSL, as an independent CT validator ------------------------------------------------------------------
def assert_openssl_sees_two_valid_scts(
    world: World, final: x509.Certificate, issuer: x509.Certificate, key: object, work: Path
) -> None:
    (work / "leaf.pem").write_bytes(final.public_bytes(Encoding.PEM))
    text = openssl("x509", "-in", work / "leaf.pem", "-noout", "-text", check=True).stdout
    assert text.count("Signed Certificate Timestamp:") == 2, text
    assert status(world, final, issuer, key, work).count("SCT validation status: valid") == 2
    corrupted = corrupt_first_sct(world, final, issuer)
    output = status(world, corrupted, issuer, key, work)
    assert output.count("SCT validation status: valid") == 1 and "SCT validation status: invalid" in output, output


def status(world: World, final: x509.Certificate, issuer: x509.Certificate, key: object, work: Path) -> str:
    """What ``openssl s_client -ct`` says of *final*, presented by ``openssl s_server`` on loopback."""
    _after_its_scts(final)
    (work / "leaf.pem").write_bytes(final.public_bytes(Encoding.PEM))
    (work / "leaf.key").write_bytes(key.private_bytes(  # type: ignore[attr-defined]
        Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))  # fmt: skip
    (work / "issuer.pem").write_bytes(issuer.public_bytes(Encoding.PEM))
    logs = "".join(
        f"\n[{log.name}]\ndescription = {log.name}\nkey = {base64.b64encode(log.ct_log.public_key_der).decode()}\n"
        for log in world.logs
    )
    (work / "logs.cnf").write_text(f"enabled_logs = {','.join(log.name for log in world.logs)}\n{logs}")
    port = free_port()
    server = subprocess.Popen(
        ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", "leaf.pem", "-key", "leaf.key",
         "-cert_chain", "issuer.pem", "-quiet"],
        cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            client = subprocess.run(
                ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-ct", "-ctlogfile", "logs.cnf",
                 "-CAfile", str(world.ca.root_pem)],
                cwd=work, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            if "Connection refused" not in client.stderr or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=10)
    return client.stdout + client.stderr


def corrupt_first_sct(world: World, final: x509.Certificate, issuer: x509.Certificate) -> x509.Certificate:
    """*final* with one bit of its first SCT's signature flipped, signed again by the issuing CA."""
    signature = embedded_scts(final)[0].signature
    tbs = bytearray(final.tbs_certificate_bytes)
    where = bytes(tbs).index(signature)
    tbs[where + len(signature) - 3] ^= 0x01
    with world.ca.db.session() as session:
        record = repositories.issuer_by_name(session, "tls-e1")
        assert record is not None
        ca_key = world.ca.signer.issuers.by_id(session, record.id).key()
    algorithm = final.signature_hash_algorithm
    assert algorithm is not None
    if isinstance(ca_key, ec.EllipticCurvePrivateKey):
        signed = ca_key.sign(bytes(tbs), ec.ECDSA(algorithm))
    else:
        assert isinstance(ca_key, rsa.RSAPrivateKey)
        signed = ca_key.sign(bytes(tbs), padding.PKCS1v15(), algorithm)
    return x509.load_der_x509_certificate(assemble_certificate(bytes(tbs), signed))


def _after_its_scts(certificate: x509.Certificate) -> None:
    """OpenSSL calls an SCT from the future if its timestamp (ms) is later than the handshake time in whole
    seconds: wait until the wall clock is a second past the newest SCT, as any real client would be."""
    scts = certificate.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value
    newest = max(sct.timestamp for sct in scts).replace(tzinfo=datetime.UTC).timestamp()
    time.sleep(max(0.0, newest + 1.0 - time.time()))
