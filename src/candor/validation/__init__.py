"""Domain and IP address control validation: the ACME challenges that need no DNS server of their own.

- :func:`validate_http01`: ACME http-01 (RFC 8555 §8.3; BR 3.2.2.4.19, 3.2.2.5.6), port 80 only, redirects
  to ports 80 and 443 only.
- :func:`validate_tlsalpn01`: ACME tls-alpn-01 (RFC 8737; BR 3.2.2.4.20, 3.2.2.5.7), port 443 only.
- :class:`AddressPolicy` decides which addresses a validator may connect to; a :class:`Resolver` (injected:
  the DNSSEC-validating resolver, or :class:`StaticResolver`) turns names into addresses.

Each returns a :class:`ValidationResult` and never raises for a network failure.
"""

from __future__ import annotations

from candor.validation.addresses import AddressPolicy, IPAddress, Resolver, StaticResolver
from candor.validation.caa import CaaDecision, CaaRecord, caa_decision
from candor.validation.dns import DnsResolver
from candor.validation.http01 import validate_http01
from candor.validation.outcome import PROBLEM_URN_PREFIX, Contact, ProblemType, ValidationResult
from candor.validation.tlsalpn01 import validate_tlsalpn01
from candor.validation.validator import ChallengeValidator

__all__ = [
    "PROBLEM_URN_PREFIX",
    "AddressPolicy",
    "CaaDecision",
    "CaaRecord",
    "ChallengeValidator",
    "Contact",
    "DnsResolver",
    "IPAddress",
    "ProblemType",
    "Resolver",
    "StaticResolver",
    "ValidationResult",
    "caa_decision",
    "validate_http01",
    "validate_tlsalpn01",
]
