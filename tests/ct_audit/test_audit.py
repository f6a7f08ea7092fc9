"""``candor ct audit`` against Candor's own RFC 6962 logs on loopback, with a CA issuing through them: a
consistent log passes; a forked log (a second instance with the same key and other entries) fails consistency;
a certificate signed with a Candor issuer's key outside the signer is an alert; a certificate whose SCT promised
inclusion and which the log does not hold after the maximum merge delay is an alert."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
from audit_support import World, rogue_certificate, write_log_list
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select
from submit_support import log_item, operator, serve_log

from candor.ct.audit import CtAuditor
from candor.ct.submit.final import FinalSubmissions
from candor.ct.submit.loglist import LogInfo, parse_log_list
from candor.storage import AuditEvent, orders, serial_to_hex
from candor.storage.models_ct_audit import CtAuditSeen, CtAuditState
from candor.storage.models_ct_submit import CtSubmission
from support import run_cli

DAY = timedelta(days=1)


def audit_cli(world: World, *args: str | Path) -> tuple[int, str, str]:
    result = run_cli("--data-dir", world.ca.home, "ct", "audit", *(args or ("--log-list", world.log_list)))
    return result.code, result.out, result.err


def events(world: World, action: str) -> list[dict[str, object]]:
    with world.ca.db.session() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()
        return [{"outcome": r.outcome, "subject": r.subject, **json.loads(r.details)} for r in rows]


def log_events(world: World, action: str, log_name: str) -> list[dict[str, object]]:
    """The events about this test's log *log_name* (the CA's database outlives each test's logs)."""
    [served] = [log for log in world.logs if log.name == log_name]
    log_id = base64.b64encode(served.ct_log.log_id).decode()
    return [e for e in events(world, action) if e.get("log_id") == log_id]


def log_info(world: World, index: int, url: str | None = None) -> LogInfo:
    served = world.logs[index]
    item = log_item(served.key, description=served.name, url=url or served.url)
    return parse_log_list(json.dumps({"operators": [operator(served.operator, [item])]})).logs[0]


# -- a consistent log ------------------------------------------------------------------------------------------
def test_a_consistent_log_with_candors_certificates_audits_clean_and_the_next_run_uses_a_consistency_proof(
    world: World,
) -> None:
    first = world.ca.issue(["audit-ok-1.example.com"]).certificate
    FinalSubmissions(db=world.ca.db, submitter=world.submitter, clock=world.ca.clock).submit_final(first)
    world.integrate()

    code, out, err = audit_cli(world)
    assert (code, err) == (0, ""), out + err
    lines = out.strip().splitlines()
    assert len(lines) == 2 and all(" ok: tree size 2 (first audit; 2 entries read, 2 under Candor" in line
                                   for line in lines), out  # fmt: skip
    with world.ca.db.session() as session:
        state = session.scalars(select(CtAuditState).where(CtAuditState.log_id == world.logs[0].ct_log.log_id)).one()
        assert (state.tree_size, state.root_hash) == (2, world.logs[0].ct_log.head().root_hash)
        seen = session.scalars(select(CtAuditSeen).where(CtAuditSeen.log_id == world.logs[0].ct_log.log_id)).all()
        assert sorted(s.leaf_index for s in seen) == [0, 1]  # the precertificate and the final certificate

    second = world.ca.issue(["audit-ok-2.example.com"]).certificate
    FinalSubmissions(db=world.ca.db, submitter=world.submitter, clock=world.ca.clock).submit_final(second)
    world.integrate()
    code, out, err = audit_cli(world)
    assert (code, err) == (0, ""), out + err
    assert "tree size 4 (was 2; 2 entries read, 2 under Candor issuers)" in out
    checked = log_events(world, "ct.audit.checked", "log-a")
    assert [e["outcome"] for e in checked] == ["success", "success"]

    # The same log named on the command line with its key, instead of a log list: nothing new, still clean.
    key = world.logs[1].key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    (world.work / "log-b.pem").write_bytes(key)
    code, out, err = audit_cli(world, "--log", world.logs[1].url, "--key", world.work / "log-b.pem")
    assert (code, err) == (0, ""), out + err
    assert "ok: tree size 4 (was 4; 0 entries read" in out


def test_entries_are_read_in_the_pages_the_log_gives_and_checked_against_the_root(world: World) -> None:
    names = [f"audit-page-{i}.example.com" for i in range(3)]
    for name in names:
        world.ca.issue([name])
    world.integrate()
    log = log_info(world, 0)
    report = CtAuditor(db=world.ca.db, clock=world.ca.clock).audit(log)
    assert report.clean and report.entries_read == 3 and report.candor_entries == 3, report.summary()


# -- a forked log ----------------------------------------------------------------------------------------------
def test_a_forked_log_fails_consistency_with_an_alert_and_keeps_the_verified_state(world: World) -> None:
    issued = world.ca.issue(["audit-fork.example.com"])
    world.integrate()
    log_b = world.logs[1]
    assert audit_cli(world)[0] == 0
    # A second instance of log-b (same key, its own database) that logged the final certificate first: the
    # same key now signs a tree of size 2 that does not extend the tree of size 1 the audit verified.
    root = x509.load_pem_x509_certificate(world.ca.root_pem.read_bytes())
    with serve_log("log-b", "Operator B", roots=[root], clock=world.ca.clock, work=world.work, key=log_b.key) as fork:
        chain = [c.public_bytes(Encoding.DER) for c in (issued.certificate, *issued.chain)]
        fork.ct_log.add_chain(chain[:2], precertificate=False)
        precertificate = world.ca.stored(issued.certificate, "precertificate").public_bytes(Encoding.DER)
        fork.ct_log.add_chain([precertificate, chain[1]], precertificate=True)
        fork.ct_log.integrate()
        assert fork.ct_log.head().tree_size == 2
        forked = write_log_list(world.work / "forked.json", [(log_b, fork.url)])
        code, out, err = audit_cli(world, "--log-list", forked)
        assert code == 8, out + err
        assert "1 ALERT(S)" in out
        assert err.startswith("ALERT ct.audit.inconsistent_log: log 'log-b' is not consistent"), err
        # Run again: the state was not moved onto the fork, so the alert stands.
        assert audit_cli(world, "--log-list", forked)[0] == 8
    with world.ca.db.session() as session:
        state = session.scalars(select(CtAuditState).where(CtAuditState.log_id == log_b.ct_log.log_id)).one()
        assert (state.tree_size, state.root_hash) == (1, log_b.ct_log.head().root_hash)
    alerts = log_events(world, "ct.audit.inconsistent_log", "log-b")
    assert len(alerts) == 2 and all(a["outcome"] == "failure" for a in alerts)
    assert alerts[0]["previous_tree_head"] == {"tree_size": 1, "sha256_root_hash": state.root_hash.hex(),  # type: ignore[index]
                                               "timestamp": state.timestamp}  # fmt: skip
    # The genuine log is still consistent with what was verified.
    assert audit_cli(world)[0] == 0


def test_a_tree_head_signed_by_another_key_is_an_alert(world: World) -> None:
    world.ca.issue(["audit-sig.example.com"])
    world.integrate()
    # log-b's tree heads, checked against log-a's key (the list names log-a's key at log-b's URL).
    report = CtAuditor(db=world.ca.db, clock=world.ca.clock).audit(log_info(world, 0, url=world.logs[1].url))
    assert [a.action for a in report.alerts] == ["ct.audit.bad_tree_head"], report.summary()
    assert "does not verify with the log's key (RFC 6962 3.5)" in report.alerts[0].message


def test_a_log_that_does_not_answer_is_reported_without_an_alert(world: World) -> None:
    dead = write_log_list(world.work / "dead.json", [(world.logs[0], "http://127.0.0.1:9/ct/none/")])
    code, out, err = audit_cli(world, "--log-list", dead)
    assert code == 9 and err == "", out + err
    assert out.strip() == "ct audit 'log-a': not audited: get-sth: connection refused"


# -- a certificate Candor did not issue ------------------------------------------------------------------------
@pytest.mark.parametrize("precertificate", [False, True], ids=["certificate", "precertificate"])
def test_a_certificate_signed_with_a_candor_issuer_key_outside_the_signer_is_an_alert(
    world: World, precertificate: bool
) -> None:
    world.ca.issue(["audit-known.example.com"])
    name = f"rogue-{'pre' if precertificate else 'final'}.example.com"
    rogue, issuer = rogue_certificate(world.ca, name, precertificate=precertificate)
    log_a = world.logs[0]
    # Submitted over HTTP like anyone could: the log checks the chain to Candor's root and logs it.
    chain = [base64.b64encode(c.public_bytes(Encoding.DER)).decode() for c in (rogue, issuer)]
    answer = world.submitter._transport.post_json(
        log_a.url + f"ct/v1/{'add-pre-chain' if precertificate else 'add-chain'}",
        json.dumps({"chain": chain}).encode(), timeout=10,
    )  # fmt: skip
    assert answer.status == 200, answer.body
    world.integrate()

    code, out, err = audit_cli(world)
    assert code == 8, out + err
    [alert_line] = err.strip().splitlines()
    kind = "precertificate" if precertificate else "certificate"
    assert alert_line.startswith(f"ALERT ct.audit.unknown_certificate: log 'log-a' entry 1: {kind} serial ")
    assert f"under 'tls-e1' ({name}) is not one Candor issued: no serial" in alert_line
    assert "'log-a': 1 ALERT(S): tree size 2" in out and "'log-b': ok: tree size 1" in out  # log-b never saw it
    [event] = log_events(world, "ct.audit.unknown_certificate", "log-a")
    assert event["outcome"] == "failure" and event["dns_names"] == [name] and event["leaf_index"] == 1
    der = rogue.public_bytes(Encoding.DER)
    if precertificate:
        assert event["sha256"] == hashlib.sha256(bytes.fromhex(str(event["der_hex"]))).hexdigest()  # the TBS
    else:
        assert (event["sha256"], event["der_hex"]) == (hashlib.sha256(der).hexdigest(), der.hex())
    # The tree itself is consistent: the state moves on, and the next run reads nothing new and says ok.
    code, out, err = audit_cli(world)
    assert (code, err) == (0, ""), out + err


# -- promised but missing after the MMD ------------------------------------------------------------------------
def test_a_final_certificate_the_log_accepted_but_never_incorporated_is_an_alert_after_the_mmd(world: World) -> None:
    issued = world.ca.issue(["audit-late.example.com"]).certificate
    world.integrate()
    log_b = world.logs[1]
    # The durable queue recorded log-b's SCT for the final certificate, but log-b never logged it.
    with world.ca.db.session() as session:
        found = orders.find_certificate_by_der(session, issued.public_bytes(Encoding.DER))
        assert found is not None
        now = world.ca.clock.now()
        session.add(CtSubmission(
            serial_id=found[0].id, log_id=log_b.ct_log.log_id, log_description="log-b",
            certificate_sha256=hashlib.sha256(issued.public_bytes(Encoding.DER)).hexdigest(), attempts=1,
            next_attempt_at=now, last_error=None, done=True, sct_timestamp=int(now.timestamp() * 1000),
            created_at=now, updated_at=now,
        ))  # fmt: skip
    auditor = CtAuditor(db=world.ca.db, clock=world.ca.clock)
    within = auditor.audit(log_info(world, 1))
    assert within.clean, within.summary()  # the MMD (24 h) has not passed
    world.ca.clock.advance(DAY + timedelta(seconds=1))
    after = auditor.audit(log_info(world, 1))
    assert [a.action for a in after.alerts] == ["ct.audit.missing_certificate"], after.summary()
    message = after.alerts[0].message
    assert message.startswith(f"log 'log-b' has not incorporated certificate {serial_to_hex(issued.serial_number)} ")
    assert "the MMD (86400 s) passed" in message and "(RFC 6962 3)" in message
    assert auditor.audit(log_info(world, 0)).clean  # log-a holds what it promised (the precertificate)
    [event] = log_events(world, "ct.audit.missing_certificate", "log-b")
    assert event["outcome"] == "failure" and event["kind"] == "certificate"


def test_a_precertificate_whose_embedded_sct_names_a_log_that_lost_it_is_an_alert_after_the_mmd(
    world: World,
) -> None:
    issued = world.ca.issue(["audit-lost.example.com"]).certificate
    world.integrate()
    log_b = world.logs[1]
    root = x509.load_pem_x509_certificate(world.ca.root_pem.read_bytes())
    # log-b restored from a backup taken before the precertificate arrived: same key, empty tree.
    with serve_log("log-b", "Operator B", roots=[root], clock=world.ca.clock, work=world.work, key=log_b.key) as lost:
        lost.ct_log.integrate()
        listed = log_info(world, 1, url=lost.url)
        auditor = CtAuditor(db=world.ca.db, clock=world.ca.clock)
        assert auditor.audit(listed).clean
        world.ca.clock.advance(DAY + timedelta(seconds=1))
        report = auditor.audit(listed)
    assert [a.action for a in report.alerts] == ["ct.audit.missing_certificate"], report.summary()
    assert "has not incorporated precertificate" in report.alerts[0].message
    assert report.alerts[0].details["serial"] == serial_to_hex(issued.serial_number)
