"""CAA evaluation (RFC 8659, with the RFC 8657 account and method binding): may this CA issue for a name?

:func:`caa_decision` is pure: it takes the result of the RFC 8659 §3 tree climb (the CAA RRsets found at the
name and at each parent, in climbing order; CNAMEs already followed by the resolver, see
:meth:`candor.validation.dns.DnsResolver.caa_climb`) and applies the property rules. It never raises for
anything a domain owner can publish: a record it cannot parse simply does not authorise issuance.

Readings of the RFCs, stated once here:

- The Relevant RRset is the first non-empty one in the climb (RFC 8659 §3); no Relevant RRset → allowed.
- A critical (flags bit 128) property with a tag other than ``issue``, ``issuewild`` or ``iodef`` → refused
  (RFC 8659 §4.1), even for a wildcard request that ``issuewild`` would otherwise decide. Tags compare
  case-insensitively (RFC 8659 §4.1). Other flag bits are reserved and ignored.
- ``issuewild`` properties are ignored for a non-wildcard name; for a wildcard name they govern when at
  least one is present, otherwise ``issue`` does (RFC 8659 §4.3). A Relevant RRset with neither → allowed
  (RFC 8659 §4.2: no ``issue`` property means issuance is not restricted by it).
- A property value is parsed with the RFC 8659 §4.2 grammar, strictly: whitespace is allowed where the ABNF
  allows ``*WSP``, nothing else is repaired (a trailing ``;`` after parameters, for instance, is malformed).
  A malformed value does not authorise: Candor's reading, failing closed, since a value it cannot parse
  cannot be shown to name this CA.
  A value without an issuer-domain-name (``;`` alone, or empty) authorises no CA.
- The issuer-domain-name compares case-insensitively with ``ca_domains`` (DNS names, RFC 4343).
- Parameters: ``accounturi`` must equal the ACME account URI exactly (RFC 8657 §3); ``validationmethods``
  is a comma-separated list that must contain the ACME name of the validation method used (RFC 8657 §4).
  Parameter tags compare case-insensitively, so ``AccountURI`` still restricts rather than being ignored
  (fail closed). A parameter tag given twice makes the value malformed (RFC 8657 §3 and §4 each define a
  single value; which one would win is undefined, so neither does). Any other parameter is ignored: RFC 8659
  §4.2 leaves parameter semantics to the issuer and defines no way to mark a parameter critical, so an
  unknown parameter cannot restrict issuance by this CA (Candor's reading).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from candor.policy.dated import (
    ACME_HTTP_01,
    ACME_TLS_ALPN_01,
    DNS_CHANGE,
    IP_ACME_HTTP_01,
    IP_ACME_TLS_ALPN_01,
)

__all__ = ["ACME_METHOD_NAMES", "CaaDecision", "CaaRecord", "caa_decision", "parse_issue_value"]

CRITICAL_FLAG = 128  # RFC 8659 §4.1: the Issuer Critical Flag is bit 0, the most significant bit of the octet
_KNOWN_TAGS = frozenset({"issue", "issuewild", "iodef"})  # RFC 8659 §4.2-4.4

# RFC 8657 §4: validationmethods names ACME methods by their challenge type. Candor's BR method identifiers
# (candor.policy.dated) map to them; an ACME name is accepted as it is.
ACME_METHOD_NAMES: dict[str, str] = {
    ACME_HTTP_01: "http-01",
    IP_ACME_HTTP_01: "http-01",
    ACME_TLS_ALPN_01: "tls-alpn-01",
    IP_ACME_TLS_ALPN_01: "tls-alpn-01",
    DNS_CHANGE: "dns-01",
}
_ACME_NAMES = frozenset(ACME_METHOD_NAMES.values())

# RFC 8659 §4.2 ABNF. WSP is space or horizontal tab (RFC 5234 Appendix B.1).
_WSP = "[ \t]*"
_LABEL = r"[A-Za-z0-9](?:-*[A-Za-z0-9])*"  # label / tag = (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT))
_ISSUER = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_PARAMETER = re.compile(rf"({_LABEL}){_WSP}={_WSP}([\x21-\x3a\x3c-\x7e]*)")  # value = *(%x21-3A / %x3C-7E)
_METHOD_LIST = re.compile(rf"(?:{_LABEL},)*{_LABEL}")  # RFC 8657 §4: value = [*(label ",") label]


@dataclass(frozen=True)
class CaaRecord:
    """One CAA resource record (RFC 8659 §4.1): flags octet, property tag, property value."""

    flags: int
    tag: str
    value: str

    def __post_init__(self) -> None:
        if not 0 <= self.flags <= 255:
            raise ValueError(f"CAA flags {self.flags} is not one octet")

    @property
    def critical(self) -> bool:
        return bool(self.flags & CRITICAL_FLAG)


@dataclass(frozen=True)
class CaaDecision:
    """Whether CAA allows issuance, why (one line naming the rule), and the name of the Relevant RRset."""

    allowed: bool
    detail: str
    relevant_name: str | None  # None when no Relevant RRset was found


@dataclass(frozen=True)
class IssueValue:
    """A parsed ``issue``/``issuewild`` value: the issuer (None for ``;``) and the parameters, in order."""

    issuer: str | None
    parameters: tuple[tuple[str, str], ...]


def parse_issue_value(value: str) -> IssueValue | None:
    """Parse an issue-value (RFC 8659 §4.2); None when it is malformed."""
    # issue-value = *WSP [issuer-domain-name *WSP] [";" *WSP [parameters *WSP]]
    rest = value.lstrip(" \t")
    issuer: str | None = None
    match = _ISSUER.match(rest)
    if match is not None:
        issuer = match.group(0)
        rest = rest[match.end() :].lstrip(" \t")
    if not rest:
        return IssueValue(issuer, ())
    if not rest.startswith(";"):
        return None
    rest = rest[1:].strip(" \t")
    parameters: list[tuple[str, str]] = []
    if not rest:
        return IssueValue(issuer, ())
    # parameters = (parameter *WSP ";" *WSP parameters) / parameter: split on ';' (a value cannot contain
    # one: %x3B is excluded) and require every piece to be a whole parameter.
    for piece in rest.split(";"):
        parameter = _PARAMETER.fullmatch(piece.strip(" \t"))
        if parameter is None:
            return None
        parameters.append((parameter.group(1), parameter.group(2)))
    return IssueValue(issuer, tuple(parameters))


def _is_ancestor_or_self(name: str, of: str) -> bool:
    return of == name or of.endswith("." + name)


def _relevant(
    records_by_name: Sequence[tuple[str, Sequence[CaaRecord]]], fqdn: str
) -> tuple[str, Sequence[CaaRecord]] | None:
    previous: str | None = None
    for name, records in records_by_name:
        key = name.lower().rstrip(".")
        if not _is_ancestor_or_self(key, fqdn) or (previous is not None and not _is_ancestor_or_self(key, previous)):
            raise ValueError(f"CAA climb: {name!r} is not {fqdn!r} or one of its parents in climbing order")
        if key == previous:
            raise ValueError(f"CAA climb: {name!r} is listed twice")
        previous = key
        if records:
            return key, records
    return None


def _acme_method(method: str) -> str:
    if method in _ACME_NAMES:
        return method
    try:
        return ACME_METHOD_NAMES[method]
    except KeyError:
        raise ValueError(f"CAA: validation method {method!r} has no RFC 8657 §4 ACME name") from None


def _authorises(
    record: CaaRecord, *, ca_domains: frozenset[str], account_uri: str, acme_method: str
) -> tuple[bool, str]:
    """Whether one issue/issuewild property authorises this CA, and a short reason when it does not."""
    parsed = parse_issue_value(record.value)
    if parsed is None:
        return False, f"{record.tag} {record.value!r} is malformed (RFC 8659 §4.2 grammar) and authorises no CA"
    if parsed.issuer is None:
        return False, f"{record.tag} {record.value!r} names no issuer: no CA may issue (RFC 8659 §4.2)"
    if parsed.issuer.lower() not in ca_domains:
        return False, f"{record.tag} {record.value!r} authorises another CA (RFC 8659 §4.2)"
    seen: dict[str, str] = {}
    for key, value in parsed.parameters:
        lowered = key.lower()
        if lowered in seen:
            return False, f"{record.tag} {record.value!r} repeats parameter {key!r}: malformed (RFC 8657 §3-4)"
        seen[lowered] = value
    if "accounturi" in seen and seen["accounturi"] != account_uri:
        return False, f"{record.tag} {record.value!r} binds issuance to another ACME account (RFC 8657 §3)"
    if "validationmethods" in seen:
        methods = seen["validationmethods"]
        if _METHOD_LIST.fullmatch(methods) is None:
            return False, f"{record.tag} {record.value!r} has a malformed validationmethods list (RFC 8657 §4)"
        if acme_method not in methods.split(","):
            return False, f"{record.tag} {record.value!r} does not permit validation method {acme_method} (RFC 8657 §4)"
    return True, ""


def caa_decision(
    records_by_name: Sequence[tuple[str, Sequence[CaaRecord]]],
    *,
    identifier: str,
    wildcard: bool,
    ca_domains: frozenset[str],
    account_uri: str,
    method: str,
) -> CaaDecision:
    """Apply RFC 8659 and RFC 8657 to the CAA climb for *identifier*.

    *records_by_name* is the climb, the name first, then its parents (RFC 8659 §3); it may stop after the
    first non-empty RRset. *identifier* is the FQDN checked (a leading ``*.`` is removed: RFC 8659 §3 climbs
    from the wildcard's base name); *wildcard* says whether the request is for the wildcard name.
    *ca_domains* are this CA's issuer domain names, *method* its BR method identifier or ACME challenge type.
    Raises ValueError only for a caller's mistake (a climb that is not one, an unknown method).
    """
    fqdn = identifier.lower().removeprefix("*.").rstrip(".")
    acme_method = _acme_method(method)
    domains = frozenset(domain.lower().rstrip(".") for domain in ca_domains)
    relevant = _relevant(records_by_name, fqdn)
    if relevant is None:
        return CaaDecision(
            True, f"RFC 8659 §3: no CAA records at {fqdn!r} or its parents: issuance not restricted", None
        )
    name, records = relevant

    for record in records:
        tag = record.tag.lower()
        if record.critical and tag not in _KNOWN_TAGS:
            return CaaDecision(
                False,
                f"RFC 8659 §4.1: CAA at {name!r} has critical property {record.tag!r}, which Candor does not process",
                name,
            )

    issue = [record for record in records if record.tag.lower() == "issue"]
    issuewild = [record for record in records if record.tag.lower() == "issuewild"]
    if wildcard and issuewild:
        governing, rule = issuewild, "RFC 8659 §4.3 (issuewild governs the wildcard)"
    else:
        governing, rule = issue, "RFC 8659 §4.2" if not wildcard else "RFC 8659 §4.3 (no issuewild: issue governs)"
    if not governing:
        return CaaDecision(True, f"{rule}: CAA at {name!r} has no issue property: issuance not restricted", name)

    reasons: list[str] = []
    for record in governing:
        ok, reason = _authorises(record, ca_domains=domains, account_uri=account_uri, acme_method=acme_method)
        if ok:
            return CaaDecision(
                True, f"{rule}: CAA at {name!r} authorises this CA ({record.tag} {record.value!r})", name
            )
        reasons.append(reason)
    return CaaDecision(False, f"{rule}: CAA at {name!r} does not authorise this CA: {'; '.join(reasons)}", name)
