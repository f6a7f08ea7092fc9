"""Revocation records, and keyCompromise closing the loop with issuance (blocked keys)."""

from __future__ import annotations

import pytest
from issuing import CA, new_key

from candor.audit import AuditLog
from candor.errors import CandorError, ErrorKind
from candor.revocation import RevocationReason, parse_reason, revoke
from candor.storage import repositories
from support import assert_one_line_error, run_cli


def _revoke(ca: CA, serial: int, reason: RevocationReason) -> list[str]:
    with ca.db.session() as session:
        issuer = repositories.issuer_by_name(session, "tls-e1")
        assert issuer is not None
        return revoke(
            session,
            audit=AuditLog(ca.clock),
            actor="test",
            issuer=issuer,
            serial=serial,
            reason=reason,
            now=ca.clock.now(),
        )


def test_key_compromise_revokes_every_certificate_for_the_key_and_blocks_it(ca: CA) -> None:
    key = new_key()
    first = ca.issue(["kc1.example.com"], key=key).certificate
    second = ca.issue(["kc2.example.com"], key=key).certificate
    bystander = ca.issue(["kc3.example.com"]).certificate
    revoked = _revoke(ca, first.serial_number, RevocationReason.KEY_COMPROMISE)
    assert len(revoked) == 2
    with ca.db.session() as session:
        issuer = repositories.issuer_by_name(session, "tls-e1")
        assert issuer is not None
        states = {
            s: repositories.serial_by_value(session, issuer, s).status  # type: ignore[union-attr]
            for s in (first.serial_number, second.serial_number, bystander.serial_number)
        }
    assert states == {
        first.serial_number: "revoked",
        second.serial_number: "revoked",
        bystander.serial_number: "issued",
    }
    with pytest.raises(CandorError, match="block"):
        ca.issue(["kc4.example.com"], key=key)


def test_a_revocation_is_never_undone_or_repeated(ca: CA) -> None:
    certificate = ca.issue(["once.example.com"]).certificate
    _revoke(ca, certificate.serial_number, RevocationReason.SUPERSEDED)
    with pytest.raises(CandorError) as caught:
        _revoke(ca, certificate.serial_number, RevocationReason.SUPERSEDED)
    assert caught.value.kind is ErrorKind.CONFLICT
    # ...but a later discovery of key compromise may still be recorded (BR 7.2.2)
    assert _revoke(ca, certificate.serial_number, RevocationReason.KEY_COMPROMISE)


def test_a_serial_never_issued_cannot_be_revoked(ca: CA) -> None:
    with pytest.raises(CandorError) as caught:
        _revoke(ca, 0x1234567890ABCDEF1234, RevocationReason.UNSPECIFIED)
    assert caught.value.kind is ErrorKind.NOT_FOUND


@pytest.mark.parametrize("name", ["certificateHold", "cACompromise", "removeFromCRL", "aACompromise", "nonsense"])
def test_reasons_the_br_forbid_are_refused(name: str) -> None:
    with pytest.raises(CandorError, match=r"BR 7\.2\.2"):
        parse_reason(name)


def test_cli_revokes_and_refuses_certificate_hold(ca: CA) -> None:
    certificate = ca.issue(["cli-revoke.example.com"]).certificate
    ca.stores.close()
    ca.db.dispose()
    serial = f"{certificate.serial_number:x}"
    held = run_cli(
        "--data-dir", ca.home, "revoke", "--issuer", "tls-e1", "--serial", serial, "--reason", "certificateHold"
    )
    assert_one_line_error(held, "certificateHold")
    done = run_cli("--data-dir", ca.home, "revoke", "--issuer", "tls-e1", "--serial", serial, "--reason", "superseded")
    assert done.code == 0, done.err
    assert "revoked tls-e1:" in done.out
