"""CAA evaluation (RFC 8659, RFC 8657) on hand-made climbs: no DNS here."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from candor.validation.caa import CaaDecision, CaaRecord, caa_decision, parse_issue_value

CA = frozenset({"candor.test"})
ACCOUNT = "https://acme.candor.test/acme/acct/42"
HTTP_01 = "3.2.2.4.19"


def decide(
    climb: Sequence[tuple[str, Sequence[CaaRecord]]],
    identifier: str = "www.example.com",
    *,
    wildcard: bool = False,
    method: str = HTTP_01,
    account_uri: str = ACCOUNT,
) -> CaaDecision:
    return caa_decision(
        climb, identifier=identifier, wildcard=wildcard, ca_domains=CA, account_uri=account_uri, method=method
    )


def issue(value: str, tag: str = "issue", flags: int = 0) -> CaaRecord:
    return CaaRecord(flags, tag, value)


def at_name(*records: CaaRecord) -> list[tuple[str, Sequence[CaaRecord]]]:
    return [("www.example.com", records)]


def test_no_caa_anywhere_allows() -> None:
    decision = decide([("www.example.com", []), ("example.com", []), ("com", [])])
    assert decision.allowed
    assert decision.relevant_name is None
    assert "RFC 8659 §3" in decision.detail


def test_empty_climb_allows() -> None:
    assert decide([]).allowed


def test_issue_for_another_ca_refuses() -> None:
    decision = decide(at_name(issue("other-ca.example")))
    assert not decision.allowed
    assert decision.relevant_name == "www.example.com"
    assert "another CA" in decision.detail


def test_issue_for_us_allows_case_insensitively() -> None:
    assert decide(at_name(issue("Candor.TEST"))).allowed
    assert decide(at_name(issue("other-ca.example"), issue("candor.test"))).allowed


def test_semicolon_alone_forbids_issuance() -> None:
    decision = decide(at_name(issue(";")))
    assert not decision.allowed
    assert "names no issuer" in decision.detail
    assert not decide(at_name(issue(""))).allowed


def test_rrset_without_issue_property_does_not_restrict() -> None:
    decision = decide(at_name(issue("mailto:security@example.com", tag="iodef")))
    assert decision.allowed
    assert "no issue property" in decision.detail


def test_issuewild_governs_wildcards_only() -> None:
    records = at_name(issue("candor.test"), issue("other-ca.example", tag="issuewild"))
    wildcard = decide(records, "*.www.example.com", wildcard=True)
    assert not wildcard.allowed
    assert "RFC 8659 §4.3" in wildcard.detail
    assert decide(records).allowed


def test_issue_governs_wildcards_when_no_issuewild() -> None:
    assert decide(at_name(issue("candor.test")), "*.www.example.com", wildcard=True).allowed
    assert not decide(at_name(issue("other-ca.example")), "*.www.example.com", wildcard=True).allowed


def test_issuewild_for_us_allows_wildcard_despite_issue_elsewhere() -> None:
    records = at_name(issue("other-ca.example"), issue("candor.test", tag="issuewild"))
    assert decide(records, "*.www.example.com", wildcard=True).allowed
    assert not decide(records).allowed


def test_critical_unknown_tag_refuses() -> None:
    decision = decide(at_name(issue("candor.test"), issue("x", tag="futuretag", flags=128)))
    assert not decision.allowed
    assert "RFC 8659 §4.1" in decision.detail


def test_critical_known_tag_is_processed() -> None:
    assert decide(at_name(issue("candor.test", flags=128))).allowed
    assert decide(at_name(issue("candor.test", tag="ISSUE"))).allowed  # tags are case-insensitive


def test_non_critical_unknown_tag_ignored() -> None:
    assert decide(at_name(issue("candor.test"), issue("x", tag="futuretag"))).allowed
    assert decide(at_name(issue("x", tag="futuretag", flags=1))).allowed  # reserved bits are not the critical one


def test_accounturi_match_and_mismatch() -> None:
    assert decide(at_name(issue(f"candor.test; accounturi={ACCOUNT}"))).allowed
    decision = decide(at_name(issue("candor.test; accounturi=https://acme.candor.test/acme/acct/7")))
    assert not decision.allowed
    assert "RFC 8657 §3" in decision.detail
    # Exact comparison: no URI normalisation.
    assert not decide(at_name(issue(f"candor.test; accounturi={ACCOUNT}/"))).allowed


def test_validationmethods_contains_or_not() -> None:
    assert decide(at_name(issue("candor.test; validationmethods=dns-01,http-01"))).allowed
    decision = decide(at_name(issue("candor.test; validationmethods=dns-01,tls-alpn-01")))
    assert not decision.allowed
    assert "RFC 8657 §4" in decision.detail
    assert decide(at_name(issue("candor.test; validationmethods=tls-alpn-01")), method="3.2.2.4.20").allowed
    assert decide(at_name(issue("candor.test; validationmethods=dns-01")), method="dns-01").allowed


def test_both_parameters_must_hold() -> None:
    value = f"candor.test; accounturi={ACCOUNT}; validationmethods=http-01"
    assert decide(at_name(issue(value))).allowed
    assert not decide(at_name(issue(value)), account_uri="https://acme.candor.test/acme/acct/7").allowed
    assert not decide(at_name(issue(value)), method="dns-01").allowed


def test_parameter_tags_are_case_insensitive_and_restrict() -> None:
    assert not decide(at_name(issue("candor.test; AccountURI=https://elsewhere.example/1"))).allowed


def test_unknown_parameter_ignored() -> None:
    assert decide(at_name(issue("candor.test; policy=ev; foo=bar"))).allowed


def test_malformed_values_do_not_match() -> None:
    for value in (
        "candor.test; accounturi",  # parameter without '='
        "candor.test extra",  # text after the issuer without ';'
        "candor.test; a=b;",  # trailing ';' after parameters is outside the §4.2 grammar
        "-candor.test",  # a label may not start with '-'
        f"candor.test; accounturi={ACCOUNT}; accounturi={ACCOUNT}",  # repeated parameter
        "candor.test; validationmethods=http-01,",  # RFC 8657 §4 list grammar
    ):
        decision = decide(at_name(issue(value)))
        assert not decision.allowed, value
    assert "malformed" in decide(at_name(issue("candor.test extra"))).detail


def test_malformed_record_does_not_hide_a_matching_one() -> None:
    assert decide(at_name(issue("candor.test extra"), issue("candor.test"))).allowed


def test_parse_issue_value_grammar() -> None:
    parsed = parse_issue_value(" \tcandor.test \t; \taccounturi = https://x.example/1 ;validationmethods=dns-01 ")
    assert parsed is not None
    assert parsed.issuer == "candor.test"
    assert parsed.parameters == (("accounturi", "https://x.example/1"), ("validationmethods", "dns-01"))
    assert parse_issue_value("candor.test;") == parse_issue_value("candor.test")
    empty = parse_issue_value("; foo=bar")
    assert empty is not None
    assert empty.issuer is None


def test_record_at_parent_applies_to_child() -> None:
    climb = [("www.example.com", []), ("example.com", [issue("other-ca.example")]), ("com", [])]
    decision = decide(climb)
    assert not decision.allowed
    assert decision.relevant_name == "example.com"


def test_child_rrset_overrides_parent() -> None:
    climb = [("www.example.com", [issue("candor.test")]), ("example.com", [issue("other-ca.example")])]
    decision = decide(climb)
    assert decision.allowed
    assert decision.relevant_name == "www.example.com"
    refused = [("www.example.com", [issue("other-ca.example")]), ("example.com", [issue("candor.test")])]
    assert not decide(refused).allowed


def test_wildcard_identifier_climbs_from_base_name() -> None:
    climb = [("example.com", [issue("candor.test")])]
    assert decide(climb, "*.example.com", wildcard=True).allowed


def test_climb_must_be_the_name_and_its_parents() -> None:
    with pytest.raises(ValueError, match="climbing order"):
        decide([("example.com", []), ("www.example.com", [])])
    with pytest.raises(ValueError, match="climbing order"):
        decide([("other.example", [issue("candor.test")])])


def test_unknown_method_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="RFC 8657"):
        decide(at_name(issue("candor.test")), method="3.2.2.4.2")


def test_flags_must_be_an_octet() -> None:
    with pytest.raises(ValueError, match="octet"):
        CaaRecord(256, "issue", "candor.test")
