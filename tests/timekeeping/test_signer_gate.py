"""WS-08e at the issuance signer: while the clock watch says the clock is not trustworthy, nothing is signed,
the order stays ready (a later finalize succeeds) and interrupted issuances are not resumed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from issuing import BASE_URL, CA, build_home, csr_for, open_ca
from sqlalchemy import func, select

from candor.errors import CandorError, ErrorKind
from candor.issuance import IssuanceSettings, IssuerResolver, Signer
from candor.storage.models import CertificateRecord, SerialRecord
from candor.storage.models_issuance import Issuance
from candor.timekeeping import SUSPENDED, ClockStatus


class Switch:
    """A watch the test flips."""

    def __init__(self) -> None:
        self.current = ClockStatus(trustworthy=True)

    def status(self) -> ClockStatus:
        return self.current

    def distrust(self) -> None:
        self.current = ClockStatus(trustworthy=False, reason="offset +3.000 s exceeds the bound of 1.0 s")

    def trust(self) -> None:
        self.current = ClockStatus(trustworthy=True)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_home(tmp_path_factory.mktemp("clock-gate"))


@pytest.fixture
def ca(home: Path) -> Iterator[CA]:
    opened = open_ca(home)
    yield opened
    opened.stores.close()
    opened.db.dispose()


def signer(ca: CA, watch: Switch, **kwargs: object) -> Signer:
    return Signer(
        db=ca.db,
        issuers=IssuerResolver(ca.stores, base_url=BASE_URL),
        clock=ca.clock,
        settings=IssuanceSettings(base_url=BASE_URL, validity=timedelta(days=90)),
        actor="test",
        clock_watch=watch,
        **kwargs,  # type: ignore[arg-type]
    )


def counts(ca: CA) -> tuple[int, int]:
    with ca.db.session() as session:
        return (
            session.scalar(select(func.count()).select_from(SerialRecord)) or 0,
            session.scalar(select(func.count()).select_from(CertificateRecord)) or 0,
        )


def test_nothing_is_signed_while_the_clock_is_untrusted_and_the_order_waits(ca: CA) -> None:
    watch = Switch()
    ca.signer = signer(ca, watch)
    holder = ca.account("acct-gate")
    ca.authorize(holder, "gate.example.com", method="3.2.2.4.7")
    order_id = ca.order(holder, ["gate.example.com"])
    csr = csr_for(["gate.example.com"])
    before = counts(ca)

    watch.distrust()
    with pytest.raises(CandorError) as refused:
        ca.signer.finalize(order_id, csr)
    assert refused.value.kind is ErrorKind.UNAVAILABLE
    assert refused.value.message == SUSPENDED  # no offset, no source names: the reason is for the operator
    assert "offset" not in refused.value.message
    assert counts(ca) == before  # no serial reserved, nothing signed
    assert ca.order_status(order_id) == "ready"

    watch.trust()
    chain = ca.signer.finalize(order_id, csr)
    assert ca.order_status(order_id) == "valid"
    assert chain.certificate.subject is not None
    assert counts(ca) == (before[0] + 1, before[1] + 2)  # a precertificate and a certificate


class Interrupted(Exception):
    pass


def test_an_interrupted_issuance_is_not_resumed_while_the_clock_is_untrusted(ca: CA) -> None:
    def crash(stage: str, _order: int) -> None:
        if stage == "intent":
            raise Interrupted

    watch = Switch()
    holder = ca.account("acct-gate")
    ca.authorize(holder, "resume.example.com", method="3.2.2.4.7")
    order_id = ca.order(holder, ["resume.example.com"])
    with pytest.raises(Interrupted):
        signer(ca, watch, on_phase=crash).finalize(order_id, csr_for(["resume.example.com"]))

    watch.distrust()
    resuming = signer(ca, watch)
    notes = resuming.reconcile()
    assert notes == ["the clock is not trustworthy: unfinished issuances are left at their last stage"]
    with ca.db.session() as session:
        issuance = session.scalars(select(Issuance).where(Issuance.order_id == order_id)).one()
        assert issuance.state == "intent"

    watch.trust()
    assert any("completed" in note for note in resuming.reconcile())
    assert ca.order_status(order_id) == "valid"
