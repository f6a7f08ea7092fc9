"""The CT policy table (Chrome and Apple CT policies) and WS-08c, on verified-SCT facts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from candor.ct.submit.loglist import LogInfo, LogKind, LogState
from candor.ct.submit.policy import Requirement, evaluate, requirement
from candor.ct.submit.sct import Sct, VerifiedSct

NOT_BEFORE = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def sct(log: str, operator: str, *, kind: LogKind = LogKind.RFC6962, after: timedelta = timedelta(0)) -> VerifiedSct:
    log_id = log.encode().ljust(32, b"\0")
    info = LogInfo(operator, log, log_id, b"", "https://log.example/", 60, LogState.USABLE, NOT_BEFORE, kind)
    timestamp = int((NOT_BEFORE + after).timestamp() * 1000)
    return VerifiedSct(Sct(0, log_id, timestamp, b"", 4, 3, b"sig"), info)


def verdict(scts: list[VerifiedSct], days: float = 90) -> tuple[bool, str]:
    result = evaluate(scts, not_before=NOT_BEFORE, not_after=NOT_BEFORE + timedelta(days=days))
    return result.met, result.explain()


A1, A2, B1, C1 = sct("a1", "A"), sct("a2", "A"), sct("b1", "B"), sct("c1", "C")
B_TILED, C_TILED = sct("bt", "B", kind=LogKind.STATIC_CT_API), sct("ct", "C", kind=LogKind.STATIC_CT_API)


@pytest.mark.parametrize(
    ("scts", "days", "met"),
    [
        ([A1, B1], 90, True),
        ([A1], 90, False),
        ([A1, A2], 90, False),  # same operator twice: Chrome's 2 operators, Apple's 1 per operator
        ([A1, A1], 90, False),  # the same log twice counts once
        ([A1, B_TILED], 90, True),  # one RFC 6962 log is enough (Apple)
        ([B_TILED, C_TILED], 90, False),  # no RFC 6962 log
        ([A1, B1], 180, True),
        ([A1, B1], 180.5, False),  # lifetime over 180 days: 3 SCTs
        ([A1, B1, C1], 181, True),
        ([A1, A2, B1], 181, True),  # Apple: up to 2 per operator count beyond 180 days
        ([A1, A2, sct("a3", "A")], 181, False),  # one operator only
        ([A1, B_TILED, C_TILED], 398, True),
    ],
)
def test_policy_table(scts: list[VerifiedSct], days: float, met: bool) -> None:
    assert verdict(scts, days)[0] is met


def test_requirements_switch_after_180_days() -> None:
    assert requirement(NOT_BEFORE, NOT_BEFORE + timedelta(days=180)) == Requirement(2, 2, 1, 1)
    assert requirement(NOT_BEFORE, NOT_BEFORE + timedelta(days=180, seconds=1)) == Requirement(3, 2, 2, 1)


def test_reasons_name_what_is_missing() -> None:
    met, why = verdict([A1, A2], 90)
    assert not met
    assert "1 SCT(s) count" in why and "1 distinct log operator(s), 2 needed" in why
    assert "no SCT from an RFC 6962 log" in verdict([B_TILED, C_TILED])[1]
    assert verdict([A1, B1]) == (True, "CT policy met")


def test_an_sct_more_than_48_hours_after_not_before_is_refused() -> None:
    """WS-08c (BR 7.1.2.7; the WoSign backdating): the SCT shows when the certificate really was signed."""
    on_time = sct("b2", "B", after=timedelta(hours=48))
    late = sct("b3", "B", after=timedelta(hours=48, milliseconds=1))
    assert verdict([A1, on_time]) == (True, "CT policy met")
    met, why = verdict([A1, late, C1])
    assert not met and "48 h after notBefore" in why and "b3" in why
