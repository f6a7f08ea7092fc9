"""ACME dns-01 (RFC 8555 §8.4): BR 3.2.2.4.7 (DNS Change) for domain names.

The validator looks up the TXT RRset at ``_acme-challenge.<name>`` (for a wildcard identifier ``*.<name>``, at
``_acme-challenge.<name>``: RFC 8555 §8.4 validates the base name), CNAMEs followed, through a
:class:`TxtSource` that validates DNSSEC (BR 3.2.2.4: every DCV lookup; BR-27). The challenge succeeds when any
record, its strings joined, equals base64url(SHA-256(key authorization)) without padding (RFC 8555 §8.4 step
3). dns-01 does not validate IP addresses (RFC 8738 §7).

Problem types (RFC 8555 §6.7): ``dns`` when the lookup failed, was DNSSEC-Bogus, or the name does not exist
(the detail says which); ``unauthorized`` when the name has no TXT record or none matches (the detail says how
many there were, never what they hold); ``rejectedIdentifier`` for an IP identifier; ``malformed`` for a key
authorization that cannot be one. A single lookup is made and recorded as one :class:`Contact` with the URL
``dns:_acme-challenge.<name> TXT``; it names no server address (the source may ask several), hence ip "" and
port 0, and ``connected`` is False (DNS over UDP makes no connection).
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from typing import Protocol

from candor.clock import Clock
from candor.errors import CandorError, ErrorKind
from candor.policy.names import Identifier
from candor.validation._net import one_line
from candor.validation.outcome import Contact, ProblemType, ValidationResult

__all__ = ["DNS01_METHOD", "TxtSource", "dns01_digest", "validate_dns01"]

DNS01_METHOD = "3.2.2.4.7"  # BR 3.2.2.4.7 DNS Change (ACME dns-01)
CHALLENGE_LABEL = "_acme-challenge"  # RFC 8555 §8.4
# RFC 8555 §8.1 and §8.4, as for the other challenge types (validation/_challenge.py): a token of 22-128
# base64url characters, and the 43-character base64url RFC 7638 SHA-256 thumbprint of the account key.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{22,128}")
THUMBPRINT_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")


class TxtSource(Protocol):
    """TXT lookups for dns-01: the records at *name* (CNAMEs followed, each record's strings joined); [] when
    the name has none. Raises CandorError: NOT_FOUND for NXDOMAIN, UNAVAILABLE when the lookup failed,
    POLICY when DNSSEC validation failed. Implemented by :class:`candor.validation.dns.DnsResolver`."""

    def txt(self, name: str) -> list[str]: ...


def dns01_digest(key_authorization: str) -> str:
    """RFC 8555 §8.4: base64url(SHA-256(key authorization)), without padding."""
    digest = hashlib.sha256(key_authorization.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _key_authorization_ok(key_authorization: str, token: str | None) -> bool:
    """RFC 8555 §8.1: token '.' base64url(thumbprint), with the challenge's own token when it is given."""
    if not isinstance(key_authorization, str):
        return False
    head, dot, thumbprint = key_authorization.rpartition(".")
    if not dot or not TOKEN_PATTERN.fullmatch(head) or not THUMBPRINT_PATTERN.fullmatch(thumbprint):
        return False
    return token is None or head == token


_LOOKUP_PROBLEMS: dict[ErrorKind, str] = {
    ErrorKind.NOT_FOUND: "NXDOMAIN",
    ErrorKind.POLICY: "DNSSEC validation failed",
    ErrorKind.UNAVAILABLE: "the lookup failed",
}


def validate_dns01(
    identifier: Identifier,
    key_authorization: str,
    *,
    txt_source: TxtSource,
    clock: Clock,
    token: str | None = None,
) -> ValidationResult:
    """Validate a dns-01 challenge; lookup failures are returned as a failed result, never raised."""
    if not isinstance(identifier, Identifier) or identifier.type not in ("dns", "ip"):
        raise TypeError(f"expected a candor.policy.names.Identifier of type dns or ip, not {identifier!r}")
    checked_at, started = clock.now(), time.monotonic()
    records: list[Contact] = []

    def result(problem: ProblemType | None, detail: str) -> ValidationResult:
        elapsed = time.monotonic() - started
        return ValidationResult(
            problem is None, DNS01_METHOD, problem, one_line(detail), tuple(records), checked_at, elapsed
        )

    if identifier.type == "ip":
        return result("rejectedIdentifier", "RFC 8738 §7: dns-01 cannot validate an IP address identifier")
    if not _key_authorization_ok(key_authorization, token):
        return result("malformed", "RFC 8555 §8.1: the key authorization is not token '.' base64url(thumbprint)")
    name = f"{CHALLENGE_LABEL}.{identifier.value.removeprefix('*.')}"
    url = f"dns:{name} TXT"
    try:
        found = txt_source.txt(name)
    except CandorError as exc:
        problem = _LOOKUP_PROBLEMS.get(exc.kind, "the lookup failed")
        records.append(Contact(url, "", 0, True, False, None, f"{problem}: {exc.message}"))
        return result("dns", f"RFC 8555 §8.4: TXT lookup for {name}: {problem} ({exc.message})")
    expected = dns01_digest(key_authorization)
    matched = expected in found
    outcome = f"{len(found)} TXT records, {'one' if matched else 'none'} matching"
    records.append(Contact(url, "", 0, True, False, None, outcome))
    if matched:
        return result(None, f"a TXT record at {name} holds the key authorization digest")
    if not found:
        return result("unauthorized", f"RFC 8555 §8.4: no TXT record found at {name}")
    return result(
        "unauthorized",
        f"RFC 8555 §8.4: none of the {len(found)} TXT records at {name} is {expected!r}, "
        "base64url(SHA-256(key authorization))",
    )
