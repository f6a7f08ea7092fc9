"""WS-01b / BR-01 / BR-02 / BR-21 / BR-30: every dated rule flips exactly at its date (UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from candor.policy.dated import (
    BASELINE,
    RULES,
    DatedRule,
    MpicRequirement,
    PolicySnapshot,
    allowed_non_corroborations,
    rules_at,
)

ONE_SECOND = timedelta(seconds=1)
FIELDS = {name for name in PolicySnapshot.__dataclass_fields__ if name not in {"at", "rows"}}


def _previous(row: DatedRule) -> DatedRule:
    earlier = [r for r in RULES if r.name == row.name and r.effective < row.effective]
    return max(earlier, key=lambda r: r.effective)


DATED_ROWS = [row for row in RULES if row.effective > BASELINE]


@pytest.mark.parametrize("row", DATED_ROWS, ids=[f"{r.name}@{r.effective.date()}" for r in DATED_ROWS])
def test_every_dated_row_flips_exactly_at_its_date(row: DatedRule) -> None:
    before = rules_at(row.effective - ONE_SECOND)
    on = rules_at(row.effective)
    assert getattr(before, row.name) == _previous(row).value
    assert getattr(on, row.name) == row.value
    assert _previous(row).value != row.value, "a row that changes nothing hides a mistake"
    assert on.citation(row.name) == row.citation


def test_table_is_well_formed() -> None:
    names = {row.name for row in RULES}
    assert names == FIELDS, "every snapshot field is a rule and every rule is a field"
    for name in names:
        dates = [row.effective for row in RULES if row.name == name]
        assert dates == sorted(dates) and len(set(dates)) == len(dates)
        assert dates[0] == BASELINE
    for row in RULES:
        assert row.effective.tzinfo is UTC
        assert row.effective.time() == datetime.min.time()
        assert row.citation


# Hard-coded from BR v2.2.6 §6.3.2 and §4.2.1, independent of the table, so the table cannot drift silently.
@pytest.mark.parametrize(
    ("moment", "validity", "dcv", "sii"),
    [
        (datetime(2025, 6, 1, tzinfo=UTC), 398, 398, 825),
        (datetime(2026, 3, 14, 23, 59, 59, tzinfo=UTC), 398, 398, 825),
        (datetime(2026, 3, 15, tzinfo=UTC), 200, 200, 398),
        (datetime(2027, 3, 14, 23, 59, 59, tzinfo=UTC), 200, 200, 398),
        (datetime(2027, 3, 15, tzinfo=UTC), 100, 100, 398),
        (datetime(2029, 3, 14, 23, 59, 59, tzinfo=UTC), 100, 100, 398),
        (datetime(2029, 3, 15, tzinfo=UTC), 47, 10, 398),
        (datetime(2040, 1, 1, tzinfo=UTC), 47, 10, 398),
    ],
)
def test_validity_and_reuse_schedule(moment: datetime, validity: int, dcv: int, sii: int) -> None:
    snapshot = rules_at(moment)
    assert (snapshot.max_validity_days, snapshot.dcv_reuse_days, snapshot.sii_reuse_days) == (validity, dcv, sii)


def test_hard_coded_flags() -> None:
    before, on = rules_at(datetime(2026, 3, 14, 23, 59, 59, tzinfo=UTC)), rules_at(datetime(2026, 3, 15, tzinfo=UTC))
    assert not before.dnssec_required and on.dnssec_required
    assert not before.reverse_zone_names_forbidden and on.reverse_zone_names_forbidden
    assert before.short_lived_max_validity == timedelta(days=10) and on.short_lived_max_validity == timedelta(days=7)
    assert rules_at(datetime(2026, 9, 14, 23, 59, 59, tzinfo=UTC)).sha1_allowed_for_ocsp_crl
    assert not rules_at(datetime(2026, 9, 15, tzinfo=UTC)).sha1_allowed_for_ocsp_crl
    assert not before.sha1_allowed_for_subscriber_certs and not on.sha1_allowed_for_subscriber_certs
    assert on.max_backdate == timedelta(hours=48)


@pytest.mark.parametrize(
    ("moment", "remote", "enforced", "rirs"),
    [
        (datetime(2025, 3, 14, 23, 59, 59, tzinfo=UTC), 0, False, 0),
        (datetime(2025, 3, 15, tzinfo=UTC), 2, False, 0),
        (datetime(2025, 9, 15, tzinfo=UTC), 2, True, 0),
        (datetime(2026, 3, 15, tzinfo=UTC), 3, True, 2),
        (datetime(2026, 6, 15, tzinfo=UTC), 4, True, 2),
        (datetime(2026, 12, 14, 23, 59, 59, tzinfo=UTC), 4, True, 2),
        (datetime(2026, 12, 15, tzinfo=UTC), 5, True, 2),
    ],
)
def test_mpic_phases(moment: datetime, remote: int, enforced: bool, rirs: int) -> None:
    assert rules_at(moment).mpic == MpicRequirement(remote, enforced, rirs)


def test_mpic_quorum_table() -> None:
    assert [allowed_non_corroborations(n) for n in range(1, 9)] == [0, 1, 1, 1, 1, 2, 2, 2]


def test_mpic_may_issue_at_2026_06_15() -> None:
    """BR-30: 4 remote perspectives; 3 corroborating in 2 RIRs issue; 2 corroborating or 1 RIR do not."""
    mpic = rules_at(datetime(2026, 6, 15, tzinfo=UTC)).mpic
    assert mpic.may_issue(remote_used=4, corroborating=3, corroborating_rirs=2)
    assert not mpic.may_issue(remote_used=4, corroborating=2, corroborating_rirs=2)
    assert not mpic.may_issue(remote_used=4, corroborating=3, corroborating_rirs=1)
    assert not mpic.may_issue(remote_used=3, corroborating=3, corroborating_rirs=2)
    assert mpic.may_issue(remote_used=6, corroborating=4, corroborating_rirs=2)


def test_mpic_first_phase_does_not_block() -> None:
    mpic = rules_at(datetime(2025, 3, 15, tzinfo=UTC)).mpic
    assert mpic.may_issue(remote_used=2, corroborating=0, corroborating_rirs=0)
    assert not mpic.may_issue(remote_used=1, corroborating=1, corroborating_rirs=1)


def test_candor_never_uses_a_forbidden_method() -> None:
    moments = {row.effective for row in RULES} | {row.effective - ONE_SECOND for row in DATED_ROWS}
    for moment in sorted(moments):
        snapshot = rules_at(moment)
        assert not snapshot.allowed_validation_methods & snapshot.br_forbidden_validation_methods, moment


@pytest.mark.parametrize(
    ("method", "last_allowed"),
    [
        ("3.2.2.4.2", datetime(2025, 7, 15, tzinfo=UTC)),
        ("3.2.2.4.15", datetime(2025, 7, 15, tzinfo=UTC)),
        ("3.2.2.4.8", datetime(2026, 3, 15, tzinfo=UTC)),
        ("3.2.2.4.16", datetime(2027, 3, 15, tzinfo=UTC)),
        ("3.2.2.4.17", datetime(2027, 3, 15, tzinfo=UTC)),
        ("3.2.2.5.2", datetime(2027, 3, 15, tzinfo=UTC)),
        ("3.2.2.5.3", datetime(2027, 3, 15, tzinfo=UTC)),
        ("3.2.2.5.5", datetime(2027, 3, 15, tzinfo=UTC)),
        ("3.2.2.4.4", datetime(2028, 3, 15, tzinfo=UTC)),
        ("3.2.2.4.13", datetime(2028, 3, 15, tzinfo=UTC)),
        ("3.2.2.4.14", datetime(2028, 3, 15, tzinfo=UTC)),
    ],
)
def test_method_sunsets(method: str, last_allowed: datetime) -> None:
    """BR-21: each sunset from BR §1.2.2, hard-coded."""
    assert method not in rules_at(last_allowed - ONE_SECOND).br_forbidden_validation_methods
    assert method in rules_at(last_allowed).br_forbidden_validation_methods


def test_method_registry_enumeration_today() -> None:
    forbidden = rules_at(datetime(2026, 6, 1, tzinfo=UTC)).br_forbidden_validation_methods
    permitted = {f"3.2.2.4.{n}" for n in range(1, 23)} - forbidden
    assert permitted == {f"3.2.2.4.{n}" for n in (4, 7, 12, 13, 14, 16, 17, 18, 19, 20, 21, 22)}


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        rules_at(datetime(2026, 3, 15))


def test_other_time_zones_are_converted() -> None:
    tokyo = timezone(timedelta(hours=9))
    assert rules_at(datetime(2026, 3, 15, 8, 59, 59, tzinfo=tokyo)).max_validity_days == 398
    assert rules_at(datetime(2026, 3, 15, 9, 0, 0, tzinfo=tokyo)).max_validity_days == 200


def test_times_before_the_table_are_refused() -> None:
    with pytest.raises(ValueError, match="starts at"):
        rules_at(BASELINE - ONE_SECOND)


def test_unknown_citation_raises() -> None:
    with pytest.raises(KeyError):
        rules_at(BASELINE).citation("nope")
