"""Domain and IP address control validation: the ACME challenges and the DNSSEC-validating DNS they rely on.

- :func:`validate_http01`: ACME http-01 (RFC 8555 §8.3; BR 3.2.2.4.19, 3.2.2.5.6), port 80 only, redirects
  to ports 80 and 443 only.
- :func:`validate_tlsalpn01`: ACME tls-alpn-01 (RFC 8737; BR 3.2.2.4.20, 3.2.2.5.7), port 443 only.
- :func:`validate_dns01`: ACME dns-01 (RFC 8555 §8.4; BR 3.2.2.4.7), TXT at ``_acme-challenge`` through a
  :class:`TxtSource`.
- :class:`DnsResolver`: addresses, CAA and TXT lookups, every one DNSSEC-validated against the configured
  trust anchors (:class:`DnssecValidator`; BR 3.2.2.4, 3.2.2.8.1).
- :class:`AddressPolicy` decides which addresses a validator may connect to; a :class:`Resolver` (injected:
  the DNSSEC-validating resolver, or :class:`StaticResolver`) turns names into addresses.

Each returns a :class:`ValidationResult` and never raises for a network failure.
"""

from __future__ import annotations

from candor.validation.addresses import AddressPolicy, IPAddress, Resolver, StaticResolver
from candor.validation.caa import CaaDecision, CaaRecord, caa_decision
from candor.validation.dns import DnsResolver
from candor.validation.dns01 import TxtSource, validate_dns01
from candor.validation.dnssec import DnssecValidator, Security
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
    "DnssecValidator",
    "IPAddress",
    "ProblemType",
    "Resolver",
    "Security",
    "StaticResolver",
    "TxtSource",
    "ValidationResult",
    "caa_decision",
    "validate_dns01",
    "validate_http01",
    "validate_tlsalpn01",
]
