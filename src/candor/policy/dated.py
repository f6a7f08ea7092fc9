"""Dated rules as data: every Baseline Requirements rule that changes on a date, in one table.

Each :class:`DatedRule` row says "from this UTC instant on, rule *name* has *value*", and cites its source.
:func:`rules_at` picks, for every rule, the row with the latest effective instant that is not after *now*.
Changing a date is a change to :data:`RULES`, never to the code that reads it.

Source: CA/B Forum TLS BR v2.2.6 (cabforum/servercert @ f884280, 2026-05-04), §1.2.2 "Relevant Dates" and
the sections cited on each row. The table starts at :data:`BASELINE`: rows effective at the baseline state
the rule as it stood then; history before it is not modelled and :func:`rules_at` refuses earlier times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from candor.clock import ensure_utc

__all__ = [
    "ACME_HTTP_01",
    "ACME_TLS_ALPN_01",
    "BASELINE",
    "DNS_CHANGE",
    "IP_ACME_HTTP_01",
    "IP_ACME_TLS_ALPN_01",
    "RULES",
    "WEBSITE_V2",
    "DatedRule",
    "MpicRequirement",
    "PolicySnapshot",
    "allowed_non_corroborations",
    "rules_at",
]

BASELINE = datetime(2025, 1, 1, tzinfo=UTC)


def _d(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


@dataclass(frozen=True)
class DatedRule:
    name: str
    effective: datetime  # UTC; the value applies from this instant on (inclusive)
    value: object
    citation: str


def allowed_non_corroborations(remote_perspectives: int) -> int:
    """BR 3.2.2.9 "Quorum Requirements" table (SC-067): 2-5 remote perspectives allow 1, 6+ allow 2."""
    if remote_perspectives >= 6:
        return 2
    if remote_perspectives >= 2:
        return 1
    return 0


@dataclass(frozen=True)
class MpicRequirement:
    """BR 3.2.2.9 phased implementation: how many remote perspectives, and whether the quorum blocks issuance."""

    min_remote_perspectives: int  # 0: MPIC not yet required
    quorum_enforced: bool  # False in the 2025-03-15 phase: the CA MAY issue despite too many non-corroborations
    min_corroborating_rirs: int  # distinct RIR service regions among the corroborating remote perspectives

    def may_issue(self, *, remote_used: int, corroborating: int, corroborating_rirs: int) -> bool:
        """Whether one MPIC attempt permits issuance under this phase (BR 3.2.2.9)."""
        if remote_used < self.min_remote_perspectives:
            return False
        if not self.quorum_enforced:
            return True
        if remote_used - corroborating > allowed_non_corroborations(remote_used):
            return False
        return corroborating_rirs >= self.min_corroborating_rirs


# BR 3.2.2.4 / 3.2.2.5 method identifiers.
DNS_CHANGE = "3.2.2.4.7"  # ACME dns-01
# BR 3.2.2.8: issue within the CAA record's TTL or 8 hours of the check, whichever is greater; Candor takes 8 h.
CAA_MAX_AGE = timedelta(hours=8)
WEBSITE_V2 = "3.2.2.4.18"  # agreed-upon change to website v2 (/.well-known/pki-validation)
ACME_HTTP_01 = "3.2.2.4.19"
ACME_TLS_ALPN_01 = "3.2.2.4.20"
IP_ACME_HTTP_01 = "3.2.2.5.6"  # RFC 8738
IP_ACME_TLS_ALPN_01 = "3.2.2.5.7"  # RFC 8738

_MPIC = "BR 3.2.2.9 phased implementation (SC-067)"
_VALIDITY = "BR 6.3.2 (SC-081)"
_DCV_REUSE = "BR 4.2.1 Domain Name and IP Address reuse table (SC-081)"

RULES: tuple[DatedRule, ...] = (
    # Maximum Validity Period of a Subscriber Certificate, in days. Validity is inclusive (BR 1.6.1): the
    # consumer compares notAfter - notBefore + 1 s against days * 86,400 s.
    DatedRule("max_validity_days", BASELINE, 398, _VALIDITY),
    DatedRule("max_validity_days", _d(2026, 3, 15), 200, _VALIDITY),
    DatedRule("max_validity_days", _d(2027, 3, 15), 100, _VALIDITY),
    DatedRule("max_validity_days", _d(2029, 3, 15), 47, _VALIDITY),
    # Domain and IP validation data reuse. (Method 3.2.2.4.22 caps its own reuse at 10 days; Candor does not
    # offer that method.)
    DatedRule("dcv_reuse_days", BASELINE, 398, _DCV_REUSE),
    DatedRule("dcv_reuse_days", _d(2026, 3, 15), 200, _DCV_REUSE),
    DatedRule("dcv_reuse_days", _d(2027, 3, 15), 100, _DCV_REUSE),
    DatedRule("dcv_reuse_days", _d(2029, 3, 15), 10, _DCV_REUSE),
    DatedRule("sii_reuse_days", BASELINE, 825, "BR 4.2.1 Subject Identity Information reuse table (SC-081)"),
    DatedRule("sii_reuse_days", _d(2026, 3, 15), 398, "BR 4.2.1 Subject Identity Information reuse table (SC-081)"),
    # BR 1.6.1 "Short-lived Subscriber Certificate": 10 days (864,000 s) before 2026-03-15, then 7 (604,800 s).
    DatedRule("short_lived_max_validity", BASELINE, timedelta(days=10), "BR 1.6.1 Short-lived Subscriber Certificate"),
    DatedRule(
        "short_lived_max_validity", _d(2026, 3, 15), timedelta(days=7), "BR 1.6.1 Short-lived Subscriber Certificate"
    ),
    # The methods Candor itself uses. None of them has a sunset in BR v2.2.6. Not offered (yet): 3.2.2.4.21
    # dns-account-01 (SC-084), 3.2.2.4.22 persistent TXT (SC-088), 3.2.2.5.1 and 3.2.2.5.8 for IPs. The email
    # and phone methods are never offered. A test checks that this set never meets the BR-forbidden set below.
    DatedRule(
        "allowed_validation_methods",
        BASELINE,
        frozenset({DNS_CHANGE, WEBSITE_V2, ACME_HTTP_01, ACME_TLS_ALPN_01, IP_ACME_HTTP_01, IP_ACME_TLS_ALPN_01}),
        "Candor policy within BR 3.2.2.4 / 3.2.2.5",
    ),
    # Methods the BR forbids (CAs "MUST NOT rely on", prior validations unusable). The baseline set was
    # retired before 2025 by earlier ballots; their exact retirement dates are not encoded here.
    DatedRule(
        "br_forbidden_validation_methods",
        BASELINE,
        frozenset({f"3.2.2.4.{n}" for n in (1, 3, 5, 6, 9, 10, 11)} | {"3.2.2.5.4"}),
        "BR 3.2.2.4.x / 3.2.2.5.4 (retired before 2025; dates not encoded)",
    ),
    DatedRule(
        "br_forbidden_validation_methods",
        _d(2025, 7, 15),
        frozenset({f"3.2.2.4.{n}" for n in (1, 2, 3, 5, 6, 9, 10, 11, 15)} | {"3.2.2.5.4"}),
        "BR 1.2.2 / 3.2.2.4.2, 3.2.2.4.15 (SC-080)",
    ),
    DatedRule(
        "br_forbidden_validation_methods",
        _d(2026, 3, 15),
        frozenset({f"3.2.2.4.{n}" for n in (1, 2, 3, 5, 6, 8, 9, 10, 11, 15)} | {"3.2.2.5.4"}),
        "BR 1.2.2 / 3.2.2.4.8 (SC-090)",
    ),
    DatedRule(
        "br_forbidden_validation_methods",
        _d(2027, 3, 15),
        frozenset({f"3.2.2.4.{n}" for n in (1, 2, 3, 5, 6, 8, 9, 10, 11, 15, 16, 17)})
        | frozenset({"3.2.2.5.2", "3.2.2.5.3", "3.2.2.5.4", "3.2.2.5.5"}),
        "BR 1.2.2 / 3.2.2.4.16, 3.2.2.4.17, 3.2.2.5.2, 3.2.2.5.3, 3.2.2.5.5 (SC-090, SC-091)",
    ),
    DatedRule(
        "br_forbidden_validation_methods",
        _d(2028, 3, 15),
        frozenset({f"3.2.2.4.{n}" for n in (1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 13, 14, 15, 16, 17)})
        | frozenset({"3.2.2.5.2", "3.2.2.5.3", "3.2.2.5.4", "3.2.2.5.5"}),
        "BR 1.2.2 / 3.2.2.4.4, 3.2.2.4.13, 3.2.2.4.14 (SC-090)",
    ),
    # Multi-Perspective Issuance Corroboration.
    DatedRule("mpic", BASELINE, MpicRequirement(0, False, 0), "BR 3.2.2.9 (not required before 2025-03-15)"),
    DatedRule("mpic", _d(2025, 3, 15), MpicRequirement(2, False, 0), _MPIC),
    DatedRule("mpic", _d(2025, 9, 15), MpicRequirement(2, True, 0), _MPIC),
    DatedRule("mpic", _d(2026, 3, 15), MpicRequirement(3, True, 2), _MPIC),
    DatedRule("mpic", _d(2026, 6, 15), MpicRequirement(4, True, 2), _MPIC),
    DatedRule("mpic", _d(2026, 12, 15), MpicRequirement(5, True, 2), _MPIC),
    # SHA-1: the narrow legacy cases of BR 7.1.3.2.1 (cross-certificates reissued from an existing SHA-1
    # certificate, CRLs of such CAs; for OCSP responses only with producedAt before 2022-06-01, so in
    # practice never for a new response) end on 2026-09-15. Candor never signs with SHA-1 either way.
    DatedRule("sha1_allowed_for_ocsp_crl", BASELINE, True, "BR 7.1.3.2.1 (SC-097)"),
    DatedRule("sha1_allowed_for_ocsp_crl", _d(2026, 9, 15), False, "BR 7.1.3.2.1 (SC-097)"),
    DatedRule("sha1_allowed_for_subscriber_certs", BASELINE, False, "BR 7.1.3.2.1 (no SHA-1 for precertificates)"),
    # DNSSEC validation to the IANA root for DCV and CAA lookups by the Primary Network Perspective.
    DatedRule("dnssec_required", BASELINE, False, "BR 3.2.2.4 / 3.2.2.8.1 (SC-085)"),
    DatedRule("dnssec_required", _d(2026, 3, 15), True, "BR 3.2.2.4 / 3.2.2.8.1 (SC-085)"),
    # Domain Names ending in an IP Reverse Zone Suffix (in-addr.arpa, ip6.arpa).
    DatedRule("reverse_zone_names_forbidden", BASELINE, False, "BR 4.2.2 / 7.1.2.7.12 (SC-086)"),
    DatedRule("reverse_zone_names_forbidden", _d(2026, 3, 15), True, "BR 4.2.2 / 7.1.2.7.12 (SC-086)"),
    # notBefore "within 48 hours of the certificate signing operation" (profile in force since SC-062).
    DatedRule("max_backdate", BASELINE, timedelta(hours=48), "BR 7.1.2.7 notBefore"),
)

_T = TypeVar("_T")


@dataclass(frozen=True)
class PolicySnapshot:
    """The value of every dated rule at one instant (:attr:`at`, UTC)."""

    at: datetime
    max_validity_days: int
    dcv_reuse_days: int
    sii_reuse_days: int
    short_lived_max_validity: timedelta
    allowed_validation_methods: frozenset[str]
    br_forbidden_validation_methods: frozenset[str]
    mpic: MpicRequirement
    sha1_allowed_for_ocsp_crl: bool
    sha1_allowed_for_subscriber_certs: bool
    dnssec_required: bool
    reverse_zone_names_forbidden: bool
    max_backdate: timedelta
    rows: tuple[DatedRule, ...]  # the row chosen for each rule, in table order

    def citation(self, name: str) -> str:
        """The source of the value in force for rule *name*."""
        for row in self.rows:
            if row.name == name:
                return row.citation
        raise KeyError(name)


def rules_at(now: datetime) -> PolicySnapshot:
    """The rules in force at *now* (timezone-aware; a naive datetime raises ``ValueError``)."""
    at = ensure_utc(now)
    if at < BASELINE:
        raise ValueError(f"the dated-rule table starts at {BASELINE.isoformat()}; {at.isoformat()} is earlier")
    chosen: dict[str, DatedRule] = {}
    for row in RULES:
        if row.effective <= at and (row.name not in chosen or row.effective > chosen[row.name].effective):
            chosen[row.name] = row

    def value(name: str, kind: type[_T]) -> _T:
        found = chosen[name].value
        if not isinstance(found, kind):
            raise TypeError(f"dated rule {name} holds a {type(found).__name__}, not a {kind.__name__}")
        return found

    return PolicySnapshot(
        at=at,
        max_validity_days=value("max_validity_days", int),
        dcv_reuse_days=value("dcv_reuse_days", int),
        sii_reuse_days=value("sii_reuse_days", int),
        short_lived_max_validity=value("short_lived_max_validity", timedelta),
        allowed_validation_methods=value("allowed_validation_methods", frozenset),
        br_forbidden_validation_methods=value("br_forbidden_validation_methods", frozenset),
        mpic=value("mpic", MpicRequirement),
        sha1_allowed_for_ocsp_crl=value("sha1_allowed_for_ocsp_crl", bool),
        sha1_allowed_for_subscriber_certs=value("sha1_allowed_for_subscriber_certs", bool),
        dnssec_required=value("dnssec_required", bool),
        reverse_zone_names_forbidden=value("reverse_zone_names_forbidden", bool),
        max_backdate=value("max_backdate", timedelta),
        rows=tuple(chosen.values()),
    )
