"""The submitter against logs behind a scripted transport: parallel submission, retries with backoff on
connection errors, 5xx and 429, none on other 4xx, every SCT verified before it counts, early stop once the
policy is met, and a one-line UNAVAILABLE naming each failed log when it is not."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from ct_pki import NOW, Pki, make_pki, precertificate
from sqlalchemy import select
from submit_support import SigningKey, b64, log_item, operator, sign_sct

from candor.clock import FakeClock
from candor.ct.submit.client import CtSubmitter
from candor.ct.submit.loglist import parse_log_list
from candor.ct.submit.sct import parse_sct_list, precert_entry, verify_sct
from candor.ct.submit.settings import CtLogOverride, CtSubmitSettings
from candor.ct.submit.transport import HttpAnswer, TransportError
from candor.errors import CandorError, ErrorKind
from candor.storage import Database
from candor.storage.models import AuditEvent

PKI: Pki = make_pki()
FAST = {"backoff_seconds": 0.01, "max_backoff_seconds": 0.05, "attempt_timeout_seconds": 2, "deadline_seconds": 5}
Behaviour = Callable[[list[bytes]], HttpAnswer]


@dataclass
class FakeLog:
    """A log reached through the fake transport: answers per call from *script* (the last entry repeats)."""

    name: str
    operator: str
    key: SigningKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    script: list[str] = field(default_factory=lambda: ["ok"])
    chains: list[list[bytes]] = field(default_factory=list)
    signer: SigningKey | None = None  # sign with another key than the listed one

    @property
    def url(self) -> str:
        return f"https://{self.name}.example/"

    def answer(self, chain: list[bytes], clock: FakeClock) -> HttpAnswer:
        self.chains.append(chain)
        step = self.script[min(len(self.chains) - 1, len(self.script) - 1)]
        if step == "refused":
            raise TransportError("connection refused")
        if step.startswith("sleep"):
            time.sleep(float(step.removeprefix("sleep")))
        elif step.isdigit():
            headers = float(1) if step == "429" else None
            return HttpAnswer(int(step), json.dumps({"error": f"{self.name} says {step}"}).encode(), headers)
        precert, issuer = (x509.load_der_x509_certificate(d) for d in chain[:2])
        sct = sign_sct(self.signer or self.key, precert_entry(precert, issuer), clock.now())
        body = {"sct_version": 0, "id": b64(sct.log_id), "timestamp": sct.timestamp, "extensions": "",
                "signature": b64(sct.digitally_signed())}  # fmt: skip
        return HttpAnswer(200, json.dumps(body).encode())


class FakeTransport:
    def __init__(self, logs: list[FakeLog], clock: FakeClock) -> None:
        self.logs, self.clock = logs, clock
        self.lock = threading.Lock()

    def post_json(self, url: str, body: bytes, *, timeout: float) -> HttpAnswer:
        log = next(log for log in self.logs if url.startswith(log.url))
        assert url == f"{log.url}ct/v1/add-pre-chain"
        chain = [base64.b64decode(c) for c in json.loads(body)["chain"]]
        return log.answer(chain, self.clock)


def submitter(fakes: list[FakeLog], db: Database | None = None, **settings: object) -> CtSubmitter:
    operators: dict[str, list[dict[str, object]]] = {}
    for log in fakes:
        operators.setdefault(log.operator, []).append(log_item(log.key, description=log.name, url=log.url))
    document = {"operators": [operator(name, items) for name, items in operators.items()]}
    clock = FakeClock(NOW)
    return CtSubmitter(
        parse_log_list(json.dumps(document)),
        clock=clock,
        settings=CtSubmitSettings(**{**FAST, **settings}),  # type: ignore[arg-type]
        ca_certificates=[PKI.root.certificate],
        transport=FakeTransport(fakes, clock),
        db=db,
    )


_serial = iter(range(5000, 6000))


def precert() -> x509.Certificate:
    return x509.load_der_x509_certificate(precertificate(PKI.issuer, next(_serial)))


def obtain(submit: CtSubmitter) -> tuple[x509.Certificate, bytes]:
    pre = precert()
    try:
        return pre, submit.obtain(pre, PKI.issuer.certificate)
    finally:
        submit.close()


def unavailable(submit: CtSubmitter) -> str:
    with pytest.raises(CandorError) as caught:
        obtain(submit)
    assert caught.value.kind is ErrorKind.UNAVAILABLE
    assert "\n" not in caught.value.message
    return caught.value.message


def test_two_operators_give_a_verified_sct_list_and_the_root_stays_home() -> None:
    a, b = FakeLog("log-a", "A"), FakeLog("log-b", "B")
    submit = submitter([a, b])
    pre, encoded = obtain(submit)
    scts = parse_sct_list(encoded)
    assert {s.log_id for s in scts} == {log.log_id for log in submit.log_list.logs}
    for sct in scts:
        listed = submit.log_list.by_id(sct.log_id)
        assert listed is not None
        verify_sct(sct, listed, precert_entry(pre, PKI.issuer.certificate), now=NOW)
    assert a.chains == b.chains == [[pre.public_bytes(Encoding.DER), PKI.issuer.der]]  # RFC 6962 4.1


def test_a_log_that_wants_the_root_gets_it_and_a_disabled_log_gets_nothing() -> None:
    a, b, c = FakeLog("log-a", "A"), FakeLog("log-b", "B"), FakeLog("log-c", "C")
    listed = {log.name: log for log in [a, b, c]}
    first = submitter([a, b, c])
    ids = {log.description: base64.b64encode(log.log_id).decode() for log in first.log_list.logs}
    first.close()
    overrides = [
        CtLogOverride(log_id=ids["log-a"], include_root=True),
        CtLogOverride(log_id=ids["log-c"], disabled=True),
    ]
    obtain(submitter(list(listed.values()), logs=overrides))
    assert a.chains[0][-1] == PKI.root.der and len(a.chains[0]) == 3
    assert len(b.chains[0]) == 2 and c.chains == []


@pytest.mark.parametrize("failure", ["503", "429", "refused"])
def test_transient_failures_are_retried_with_backoff(failure: str) -> None:
    a, b = FakeLog("log-a", "A"), FakeLog("log-b", "B", script=[failure, failure, "ok"])
    obtain(submitter([a, b]))
    assert len(b.chains) == 3


def test_a_4xx_refusal_is_not_retried_and_issuance_fails_closed_naming_the_log() -> None:
    a, b = FakeLog("log-a", "A"), FakeLog("log-b", "B", script=["400"])
    message = unavailable(submitter([a, b]))
    assert len(b.chains) == 1
    assert "CT policy not met" in message and "log-b: HTTP 400 (log-b says 400) after 1 attempt(s)" in message


def test_a_log_that_stays_down_fails_closed_after_the_attempts() -> None:
    a, b = FakeLog("log-a", "A"), FakeLog("log-b", "B", script=["refused"])
    message = unavailable(submitter([a, b], attempts=4))
    assert len(b.chains) == 4
    assert "log-b: connection refused after 4 attempt(s)" in message
    assert "1 distinct log operator(s), 2 needed" in message


def test_an_sct_that_does_not_verify_is_not_counted() -> None:
    a = FakeLog("log-a", "A")
    b = FakeLog("log-b", "B", signer=ec.generate_private_key(ec.SECP256R1()))
    message = unavailable(submitter([a, b]))
    assert len(b.chains) == 1  # a log that signs wrongly is not asked again
    assert "log-b: rejected SCT: the SCT's log ID is not this log's" in message


def test_submission_stops_once_the_policy_is_met_with_its_margin() -> None:
    logs = [FakeLog("log-a", "A"), FakeLog("log-b", "B"), FakeLog("log-c", "C", script=["sleep3"])]
    started = time.monotonic()
    _pre, encoded = obtain(submitter(logs, margin=0))
    assert time.monotonic() - started < 2
    assert len(parse_sct_list(encoded)) == 2


def test_with_wait_for_all_every_log_is_awaited() -> None:
    logs = [FakeLog("log-a", "A"), FakeLog("log-b", "B"), FakeLog("log-c", "C", script=["sleep0.3"])]
    _pre, encoded = obtain(submitter(logs, wait_for_all=True))
    assert len(parse_sct_list(encoded)) == 3
    logs = [FakeLog("log-a", "A"), FakeLog("log-b", "B"), FakeLog("log-c", "C", script=["sleep0.3"])]
    _pre, encoded = obtain(submitter(logs, margin=1))  # the margin waits for the third log too
    assert len(parse_sct_list(encoded)) == 3


def test_the_deadline_bounds_a_hanging_log() -> None:
    logs = [FakeLog("log-a", "A"), FakeLog("log-b", "B", script=["sleep3"])]
    started = time.monotonic()
    message = unavailable(submitter(logs, deadline_seconds=0.5))
    assert time.monotonic() - started < 2
    assert "log-b: no answer before the deadline" in message


def test_no_usable_log_for_the_expiry_is_unavailable() -> None:
    a = FakeLog("log-a", "A")
    expired = ("2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z")
    document = {"operators": [operator("A", [log_item(a.key, description="old", url=a.url, interval=expired)])]}
    submit = CtSubmitter(parse_log_list(json.dumps(document)), clock=FakeClock(NOW))
    assert "no usable or qualified log" in unavailable(submit)


def test_every_logs_outcome_is_audited(db: Database) -> None:
    a, b = FakeLog("log-a", "A"), FakeLog("log-b", "B", script=["500"])
    unavailable(submitter([a, b], db=db, attempts=2))
    with db.session() as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "ct.precertificate.submitted")).one()
    assert event.outcome == "failure"
    logs = {entry["log"]: entry for entry in json.loads(event.details)["logs"]}
    assert logs["log-a"]["outcome"] == "sct" and logs["log-b"]["outcome"] == "failed"
    assert logs["log-b"]["attempts"] == 2 and "HTTP 500" in logs["log-b"]["error"]
