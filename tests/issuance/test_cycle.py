"""The issuance cycle end to end on a private issuer: what is stored, signed, audited and refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from issuing import CA, csr_for, new_key, open_ca
from sqlalchemy import func, select

from candor.audit import verify_chain
from candor.errors import CandorError, ErrorKind
from candor.lint import CertificateKind, LintReport, lint_certificate
from candor.profiles.precert import tbs_without_poison_or_scts
from candor.signing import linted
from candor.storage.models import AuditEvent, CertificateRecord, SerialRecord
from candor.storage.models_issuance import Issuance
from support import openssl


def _counts(ca: CA) -> tuple[int, int]:
    with ca.db.session() as session:
        serials = session.scalar(select(func.count()).select_from(SerialRecord)) or 0
        certificates = session.scalar(select(func.count()).select_from(CertificateRecord)) or 0
    return serials, certificates


def _verify_sslserver(ca: CA, certificate: x509.Certificate, tmp_path: Path) -> None:
    leaf, chain = tmp_path / "leaf.pem", tmp_path / "chain.pem"
    leaf.write_bytes(certificate.public_bytes(Encoding.PEM))
    issuer_pem = (ca.home / "public" / "issuers" / "tls-e1.pem").read_bytes()
    chain.write_bytes(issuer_pem)
    when = str(int(ca.clock.now().timestamp()))
    result = openssl(
        "verify", "-x509_strict", "-purpose", "sslserver", "-attime", when,
        "-CAfile", ca.root_pem, "-untrusted", chain, leaf,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("key_kind", ["p256", "p384", "rsa2048", "rsa3072"])
def test_issues_a_verifiable_certificate(ca: CA, key_kind: str, tmp_path: Path) -> None:
    names = [f"www.{key_kind}.example.com", f"{key_kind}.example.com"]
    chain = ca.issue(names, key=new_key(key_kind))
    certificate = chain.certificate
    sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(sans.get_values_for_type(x509.DNSName)) == sorted(names)
    assert chain.chain[0].subject == certificate.issuer
    _verify_sslserver(ca, certificate, tmp_path)


def test_wildcard_and_ip_address(ca: CA, tmp_path: Path) -> None:
    chain = ca.issue(["*.wild.example.com", "wild.example.com", "203.0.114.7"])
    _verify_sslserver(ca, chain.certificate, tmp_path)


def test_the_final_certificate_is_the_precertificate_without_poison(ca: CA) -> None:
    """WS-14b: both TBSCertificates reduce to the same bytes (RFC 6962 3.2)."""
    chain = ca.issue(["ws14b.example.com"])
    precert = ca.stored(chain.certificate, "precertificate")
    final = ca.stored(chain.certificate, "certificate")
    assert final == chain.certificate
    assert precert.serial_number == final.serial_number
    assert tbs_without_poison_or_scts(precert.tbs_certificate_bytes) == final.tbs_certificate_bytes
    assert any(e.oid.dotted_string == "1.3.6.1.4.1.11129.2.4.3" and e.critical for e in precert.extensions)


def test_not_before_comes_from_the_signers_clock(ca: CA) -> None:
    """WS-08a/b: the request cannot carry a notBefore; the signer's clock sets it."""
    ca.clock.set(datetime(2026, 12, 24, 9, 30, 15, 250000, tzinfo=UTC))
    certificate = ca.issue(["clock.example.com"]).certificate
    assert certificate.not_valid_before_utc == datetime(2026, 12, 24, 9, 30, 15, tzinfo=UTC)
    assert certificate.not_valid_after_utc - certificate.not_valid_before_utc == timedelta(days=90, seconds=-1)


@pytest.mark.parametrize(
    ("moment", "days"),
    [
        (datetime(2027, 3, 15, tzinfo=UTC) - timedelta(seconds=1), 200),
        (datetime(2027, 3, 15, tzinfo=UTC), 100),
        (datetime(2029, 3, 15, tzinfo=UTC) - timedelta(seconds=1), 100),
        (datetime(2029, 3, 15, tzinfo=UTC), 47),
    ],
)
def test_validity_follows_the_dated_maximum(ca_home: Path, moment: datetime, days: int) -> None:
    """WS-01b at the signer: the configured 398 days are cut to the maximum in force at that second."""
    ca = open_ca(ca_home, now=moment, validity_days=398)
    try:
        certificate = ca.issue([f"v{days}-{moment:%Y%m%d%H%M%S}.example.com"]).certificate
    finally:
        ca.stores.close()
        ca.db.dispose()
    assert certificate.not_valid_after_utc - certificate.not_valid_before_utc == timedelta(days=days, seconds=-1)


def test_finalizing_twice_returns_the_same_certificate(ca: CA) -> None:
    account = ca.account("acct-twice")
    ca.authorize(account, "twice.example.com")
    order_id = ca.order(account, ["twice.example.com"])
    key = new_key()
    first = ca.signer.finalize(order_id, csr_for(["twice.example.com"], key=key))
    second = ca.signer.finalize(order_id, csr_for(["twice.example.com"], key=key))
    assert first.certificate == second.certificate
    with pytest.raises(CandorError) as caught:
        ca.signer.finalize(order_id, csr_for(["twice.example.com"]))  # another key for the same order
    assert caught.value.kind is ErrorKind.CONFLICT


def test_each_stage_is_audited_with_what_was_signed(ca: CA) -> None:
    chain = ca.issue(["audited.example.com"])
    der_hex = chain.certificate.public_bytes(Encoding.DER).hex()
    with ca.db.session() as session:
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))
        assert verify_chain(session).ok
    actions = [e.action for e in events]
    for expected in ("issuance.intent", "issuance.final_intent"):
        assert expected in actions
    signed = [json.loads(e.details) for e in events if e.action == "certificate.sign"]
    assert any(d["der"] == der_hex and d["kind"] == "certificate" for d in signed)
    assert any(d["kind"] == "precertificate" for d in signed)


def test_the_issuance_record_keeps_the_linted_tbs(ca: CA) -> None:
    chain = ca.issue(["record.example.com"])
    with ca.db.session() as session:
        issuance = session.scalars(select(Issuance).order_by(Issuance.id.desc()).limit(1)).one()
        assert issuance.state == "complete"
        assert issuance.final_tbs == chain.certificate.tbs_certificate_bytes
        assert issuance.serial.status == "issued"


def test_nothing_is_signed_for_a_refused_order(ca: CA) -> None:
    before = _counts(ca)
    account = ca.account("acct-refused")
    order_id = ca.order(account, ["unauthorized.example.com"])
    with pytest.raises(CandorError, match=r"BR 3\.2\.2\.4"):
        ca.signer.finalize(order_id, csr_for(["unauthorized.example.com"]))
    assert _counts(ca) == before
    assert ca.order_status(order_id) == "invalid"


def test_a_refusal_does_not_poison_the_signer_for_the_next_order(ca: CA) -> None:
    """A refused order rolls its transaction back; cached issuer facts must survive that (a regression: the
    cache once held an ORM object that the rollback expired)."""
    account = ca.account("acct-after-refusal")
    order_id = ca.order(account, ["refused-first.example.com"])
    with pytest.raises(CandorError):
        ca.signer.finalize(order_id, csr_for(["other.example.com"]))  # names differ: refused after the claim
    assert ca.issue(["accepted-next.example.com"]).certificate


@pytest.fixture
def lints(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The kind of every certificate the signer lints, in order (each still linted)."""
    seen: list[str] = []
    lint = linted._lint

    def recording(der: bytes, kind: CertificateKind, *, what: str, allow_local_urls: bool) -> LintReport:
        seen.append(kind.value)
        return lint(der, kind, what=what, allow_local_urls=allow_local_urls)

    monkeypatch.setattr(linted, "_lint", recording)
    return seen


def _final_intent_checked(ca: CA) -> str:
    with ca.db.session() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "issuance.final_intent").order_by(AuditEvent.seq.desc())
        ).first()
        assert event is not None
        return str(json.loads(event.details)["checked"])


def test_by_default_the_final_certificate_is_admitted_by_its_correspondence(ca: CA, lints: list[str]) -> None:
    """BR 4.3.1.2: the precertificate is linted; the final certificate corresponds to it, checked, not linted again."""
    ca.issue(["one-lint.example.com"])
    assert lints == ["dv-precertificate"]
    assert _final_intent_checked(ca) == "corresponds to the linted precertificate (BR 4.3.1.2, RFC 6962)"


def test_lint_final_certificate_lints_the_final_certificate_too(ca_home: Path, lints: list[str]) -> None:
    ca = open_ca(ca_home, lint_final=True)
    try:
        account = ca.account("acct-two-lints")
        ca.authorize(account, "two-lints.example.com", method="3.2.2.4.7")
        order_id = ca.order(account, ["two-lints.example.com"])
        chain = ca.signer.finalize(order_id, csr_for(["two-lints.example.com"], common_name="two-lints.example.com"))
        assert lints == ["dv-precertificate", "dv-certificate"]
        assert _final_intent_checked(ca).endswith("; linted")
        report = lint_certificate(chain.certificate.public_bytes(Encoding.DER), CertificateKind.DV_CERTIFICATE)
        assert report.ok and report.warnings  # a commonName: pkilint's DV warning
        with ca.db.session() as session:
            event = session.scalars(
                select(AuditEvent).where(AuditEvent.action == "issuance.final_intent").order_by(AuditEvent.seq.desc())
            ).first()
            assert event is not None
            # the final certificate's own warnings, as the intent's event records the precertificate's
            assert json.loads(event.details)["lint_warnings"] == [str(w) for w in report.warnings]
    finally:
        ca.stores.close()
        ca.db.dispose()


def test_a_final_certificate_the_linter_refuses_is_never_signed(ca_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With lint_final_certificate, a lint error in the final certificate stops the cycle before the final intent:
    the precertificate stays (it was signed and logged), nothing else is signed or stored, and a retry is refused
    again (fail closed)."""
    lint = linted._lint

    def refusing_finals(der: bytes, kind: CertificateKind, *, what: str, allow_local_urls: bool) -> LintReport:
        if kind is CertificateKind.DV_CERTIFICATE:
            raise CandorError(ErrorKind.LINT, f"{what}: pkilint reports 1 error(s): ERROR injected")
        return lint(der, kind, what=what, allow_local_urls=allow_local_urls)

    monkeypatch.setattr(linted, "_lint", refusing_finals)
    ca = open_ca(ca_home, lint_final=True)
    try:
        account = ca.account("acct-final-lint")
        ca.authorize(account, "final-lint.example.com", method="3.2.2.4.7")
        order_id = ca.order(account, ["final-lint.example.com"])
        csr = csr_for(["final-lint.example.com"], key=new_key())
        for _attempt in range(2):
            with pytest.raises(CandorError, match="ERROR injected") as refused:
                ca.signer.finalize(order_id, csr)
            assert refused.value.kind is ErrorKind.LINT
        with ca.db.session() as session:
            issuance = session.scalars(select(Issuance).where(Issuance.order_id == order_id)).one()
            assert issuance.state == "precertificate"
            assert issuance.final_tbs is None
            kinds = session.scalars(
                select(CertificateRecord.kind).where(CertificateRecord.serial_id == issuance.serial_id)
            ).all()
        assert kinds == ["precertificate"]
    finally:
        ca.stores.close()
        ca.db.dispose()
