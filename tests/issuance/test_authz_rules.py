"""The authorization coverage rules as a pure function (BR 3.2.2.4, 1.6.1 Authorization Domain Name)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from candor.errors import CandorError
from candor.issuance.authz import AuthorizationFacts, ancestors, covers, lookup_values, require_authorized
from candor.policy.names import Identifier

NOW = datetime(2026, 12, 1, tzinfo=UTC)
METHODS = frozenset({"3.2.2.4.7", "3.2.2.4.19", "3.2.2.4.20", "3.2.2.5.6", "3.2.2.5.7"})


def fact(value: str, method: str = "3.2.2.4.19", *, kind: str = "dns", **changes: object) -> AuthorizationFacts:
    base: dict[str, object] = {
        "id": 1,
        "identifier_type": kind,
        "value": value,
        "status": "valid",
        "method": method,
        "validated_at": NOW - timedelta(days=1),
        "expires_at": NOW + timedelta(days=1),
    }
    base.update(changes)
    return AuthorizationFacts(**base)  # type: ignore[arg-type]


def dns(value: str) -> Identifier:
    return Identifier("dns", value)


@pytest.mark.parametrize(
    ("authorized", "method", "requested", "covered"),
    [
        ("example.com", "3.2.2.4.19", "example.com", True),
        ("example.com", "3.2.2.4.19", "www.example.com", False),  # WS-05d
        ("www.example.com", "3.2.2.4.19", "example.com", False),  # WS-05a
        ("example.com", "3.2.2.4.20", "*.example.com", False),
        ("example.com", "3.2.2.4.7", "a.b.example.com", True),  # WS-05c
        ("example.com", "3.2.2.4.7", "*.example.com", True),
        ("example.com", "3.2.2.4.7", "*.a.example.com", True),
        ("sub.example.com", "3.2.2.4.7", "example.com", False),  # WS-05c, the other way
        ("example.com", "3.2.2.4.7", "badexample.com", False),  # a suffix match is not a label match
        ("example.com", "3.2.2.4.7", "example.com.evil.net", False),
    ],
)
def test_coverage(authorized: str, method: str, requested: str, covered: bool) -> None:
    assert covers(fact(authorized, method), dns(requested)) is covered


def test_ip_addresses_need_the_same_address_by_an_ip_method() -> None:
    assert covers(fact("203.0.114.7", "3.2.2.5.6", kind="ip"), Identifier("ip", "203.0.114.7"))
    assert not covers(fact("203.0.114.7", "3.2.2.4.19", kind="ip"), Identifier("ip", "203.0.114.7"))
    assert not covers(fact("203.0.114.8", "3.2.2.5.6", kind="ip"), Identifier("ip", "203.0.114.7"))


@pytest.mark.parametrize(
    "changes",
    [
        {"status": "pending"},
        {"status": "revoked"},
        {"expires_at": NOW},
        {"validated_at": NOW - timedelta(days=201)},
        {"method": "3.2.2.4.6"},
        {"method": "operator"},
        {"validated_at": None},
    ],
)
def test_unusable_authorizations_are_ignored(changes: dict[str, object]) -> None:
    with pytest.raises(CandorError, match=r"BR 3\.2\.2\.4"):
        require_authorized(
            [dns("example.com")],
            [fact("example.com", **changes)],  # type: ignore[arg-type]
            now=NOW,
            reuse=timedelta(days=200),
            methods=METHODS,
            private_issuer=False,
        )


def test_operator_attestation_counts_on_a_private_issuer_only() -> None:
    facts = [fact("intranet.example.com", "operator")]
    chosen = require_authorized(
        [dns("intranet.example.com")], facts, now=NOW, reuse=timedelta(days=200), methods=METHODS, private_issuer=True
    )
    assert chosen == {"intranet.example.com": 1}


def test_lookup_values_include_every_possible_authorization_domain_name() -> None:
    assert lookup_values([dns("*.a.example.com")]) == {"a.example.com", "example.com", "com"}
    assert ancestors("a.b.c") == ["b.c", "c"]


def test_a_caa_check_must_be_fresh_when_asked() -> None:
    """BR 3.2.2.8 as the signer applies it on a public issuer: 8 hours, per dns identifier; IPs have no CAA."""
    eight = timedelta(hours=8)
    fresh = fact("example.com", caa_checked_at=NOW - timedelta(hours=7, minutes=59))
    stale = fact("example.com", caa_checked_at=NOW - eight)
    never = fact("example.com")
    args = {"now": NOW, "reuse": timedelta(days=200), "methods": METHODS, "private_issuer": False}
    assert require_authorized([dns("example.com")], [fresh], caa_max_age=eight, **args) == {"example.com": 1}  # type: ignore[arg-type]
    for facts in ([stale], [never]):
        with pytest.raises(CandorError, match=r"BR 3\.2\.2\.8"):
            require_authorized([dns("example.com")], facts, caa_max_age=eight, **args)  # type: ignore[arg-type]
    # Without the requirement (a private issuer) the same authorization covers the name.
    assert require_authorized([dns("example.com")], [stale], **args) == {"example.com": 1}  # type: ignore[arg-type]
    # A fresh one among stale ones is the one chosen.
    newer = fact("example.com", id=2, caa_checked_at=NOW - timedelta(hours=1))
    assert require_authorized([dns("example.com")], [stale, newer], caa_max_age=eight, **args) == {"example.com": 2}  # type: ignore[arg-type]
    ip = fact("192.0.2.1", "3.2.2.5.6", kind="ip")
    assert require_authorized([Identifier("ip", "192.0.2.1")], [ip], caa_max_age=eight, **args) == {"192.0.2.1": 1}  # type: ignore[arg-type]
