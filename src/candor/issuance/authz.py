"""Does an account hold a valid authorization for every name? The signer's own answer (BR 3.2.2.4, 4.2.1).

Pure: the caller reads the authorizations from storage and passes them in with the time and the dated
rules in force. The rules, from the BR and the WoSign "Incident 1" lesson:

- An authorization covers only the account it was made for (the caller loads that account's only).
- It is valid now: status valid, not expired, and validated within the reuse period (BR 4.2.1).
- Its method is allowed today (the dated table); "operator" attestation counts only on a private issuer.
- http-01, tls-alpn-01 and the website-change method prove exactly one FQDN: never its parent, never its
  children, never a wildcard (BR 3.2.2.4.18/.19/.20).
- A DNS change (BR 3.2.2.4.7, ACME dns-01) proves the Authorization Domain Name: it covers that name, its
  subdomains and a wildcard below it (BR 1.6.1 "Authorization Domain Name"). Pruning runs only toward the
  base domain, so a child never authorizes a parent.
- IP addresses are covered only by an authorization of the same address by an IP method (BR 3.2.2.5).
- On a publicly-trusted issuer, a domain name is covered only by an authorization whose CAA check is younger
  than *caa_max_age* (BR 3.2.2.8): the RA checks CAA at validation and again at finalization, and the signer
  re-checks that it did, so no path to the signer (ACME, CLI, a forged order) issues on a stale CAA check.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from candor.errors import CandorError, ErrorKind
from candor.policy.names import Identifier

DNS_CHANGE = "3.2.2.4.7"
OPERATOR = "operator"
IP_METHOD_PREFIX = "3.2.2.5"


@dataclass(frozen=True)
class AuthorizationFacts:
    """What the rule needs from a stored authorization."""

    id: int
    identifier_type: str
    value: str
    status: str
    method: str | None
    validated_at: datetime | None
    expires_at: datetime
    caa_checked_at: datetime | None = None  # when the RA last found CAA permitting issuance for this name


def ancestors(name: str) -> list[str]:
    """``a.b.example.com`` -> ``[b.example.com, example.com, com]`` (the candidate Authorization Domain Names)."""
    labels = name.split(".")
    return [".".join(labels[i:]) for i in range(1, len(labels))]


def lookup_values(identifiers: Iterable[Identifier]) -> set[str]:
    """Every stored identifier value that could cover one of *identifiers*."""
    values: set[str] = set()
    for identifier in identifiers:
        base = identifier.value.removeprefix("*.")
        values.add(base)
        if identifier.type == "dns":
            values.update(ancestors(base))
    return values


def _usable(
    fact: AuthorizationFacts, *, now: datetime, reuse: timedelta, methods: frozenset[str], private: bool
) -> bool:
    if fact.status != "valid" or fact.expires_at <= now or fact.validated_at is None or fact.method is None:
        return False
    if fact.validated_at + reuse < now:  # BR 4.2.1: validation data older than the reuse period
        return False
    if fact.method == OPERATOR:
        return private
    return fact.method in methods


def covers(fact: AuthorizationFacts, identifier: Identifier) -> bool:
    """Whether *fact* (already known usable) proves control of *identifier*."""
    if fact.identifier_type != identifier.type:
        return False
    if identifier.type == "ip":
        return fact.value == identifier.value and (fact.method or "").startswith((IP_METHOD_PREFIX, OPERATOR))
    wildcard = identifier.value.startswith("*.")
    base = identifier.value.removeprefix("*.")
    domain_wide = fact.method in (DNS_CHANGE, OPERATOR)
    if fact.value == base:
        return domain_wide or not wildcard
    return domain_wide and base.endswith("." + fact.value)


def require_authorized(
    identifiers: Sequence[Identifier],
    facts: Sequence[AuthorizationFacts],
    *,
    now: datetime,
    reuse: timedelta,
    methods: frozenset[str],
    private_issuer: bool,
    caa_max_age: timedelta | None = None,
) -> dict[str, int]:
    """Map each identifier to the authorization that covers it, or refuse naming the first uncovered one.
    With *caa_max_age*, a dns identifier also needs the covering authorization's CAA check to be that fresh."""
    usable = [f for f in facts if _usable(f, now=now, reuse=reuse, methods=methods, private=private_issuer)]
    chosen: dict[str, int] = {}
    for identifier in identifiers:
        covering = [f for f in usable if covers(f, identifier)]
        if not covering:
            raise CandorError(
                ErrorKind.UNAUTHORIZED,
                f"BR 3.2.2.4: this account holds no valid authorization covering {identifier.value!r}",
            )
        match = covering[0]
        if caa_max_age is not None and identifier.type == "dns":
            fresh = [f for f in covering if f.caa_checked_at is not None and f.caa_checked_at + caa_max_age > now]
            if not fresh:
                raise CandorError(
                    ErrorKind.POLICY,
                    f"BR 3.2.2.8: the CAA check for {identifier.value!r} is missing or older than {caa_max_age}",
                )
            match = fresh[0]
        chosen[identifier.value] = match.id
    return chosen
