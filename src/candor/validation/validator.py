"""One entry point for the challenge types Candor validates, for the RA and the ACME front end.

http-01 and tls-alpn-01 use the injected resolver and address policy; dns-01 (RFC 8555 §8.4, BR 3.2.2.4.7)
uses the ``txt_source`` (the DNSSEC-validating :class:`candor.validation.dns.DnsResolver`) and fails with a
clear result when none is configured.

After a challenge succeeds, CAA is checked for the name (RFC 8659; RFC 8657 accounturi and
validationmethods; BR 3.2.2.8) when a CAA source is configured. A CAA lookup that fails is not permission:
the validation fails (RFC 8659 3; BR 3.2.2.8.1).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal, Protocol

from candor.clock import Clock
from candor.errors import CandorError
from candor.policy.names import Identifier
from candor.validation.addresses import AddressPolicy, Resolver
from candor.validation.caa import CaaRecord, caa_decision
from candor.validation.dns01 import DNS01_METHOD, TxtSource, validate_dns01
from candor.validation.http01 import validate_http01
from candor.validation.outcome import ValidationResult
from candor.validation.tlsalpn01 import validate_tlsalpn01


class CaaSource(Protocol):
    def caa_climb(self, name: str) -> list[tuple[str, list[CaaRecord]]]: ...


@dataclass(frozen=True)
class CaaCheck:
    source: CaaSource
    ca_domains: frozenset[str]  # this CA's issuer domain names (RFC 8659 4.2), also in the directory's meta


@dataclass(frozen=True)
class ChallengeValidator:
    resolver: Resolver
    policy: AddressPolicy
    clock: Clock
    timeout: float = 10.0
    caa: CaaCheck | None = None
    txt_source: TxtSource | None = None  # dns-01; None: dns-01 challenges fail as not configured

    def validate(
        self, challenge_type: str, identifier: Identifier, token: str, key_authorization: str, *, account_uri: str = ""
    ) -> ValidationResult:
        if challenge_type == "http-01":
            result = validate_http01(
                identifier, token, key_authorization,
                resolver=self.resolver, policy=self.policy, clock=self.clock, timeout=self.timeout,
            )  # fmt: skip
        elif challenge_type == "tls-alpn-01":
            result = validate_tlsalpn01(
                identifier, token, key_authorization,
                resolver=self.resolver, policy=self.policy, clock=self.clock, timeout=self.timeout,
            )  # fmt: skip
        elif challenge_type == "dns-01":
            if self.txt_source is None:
                now = self.clock.now()
                return ValidationResult(False, DNS01_METHOD, "dns", "dns-01 is not configured on this CA", (), now, 0.0)
            result = validate_dns01(
                identifier, key_authorization, txt_source=self.txt_source, clock=self.clock, token=token
            )
        else:
            raise ValueError(f"no validator for challenge type {challenge_type!r}")
        if not result.ok or self.caa is None or identifier.type != "dns":
            return result
        return self._check_caa(result, identifier, account_uri)

    def _check_caa(self, result: ValidationResult, identifier: Identifier, account_uri: str) -> ValidationResult:
        refusal = self.recheck_caa(identifier, method=result.method, account_uri=account_uri)
        if refusal is None:
            return result
        problem_type, detail = refusal
        return dataclasses.replace(result, ok=False, problem_type=problem_type, detail=detail)

    def recheck_caa(
        self, identifier: Identifier, *, method: str, account_uri: str
    ) -> tuple[Literal["dns", "caa"], str] | None:
        """CAA for *identifier* validated by *method* (a BR method number): None when this CA may issue, else
        the RFC 8555 problem type and a detail. Also the recheck at finalization (BR 3.2.2.8: the check must
        be no older than 8 hours at issuance). Without a CAA source (a private issuer) there is nothing to
        check."""
        if self.caa is None or identifier.type != "dns":
            return None
        name = identifier.value.removeprefix("*.")
        try:
            climb = self.caa.source.caa_climb(name)
        except CandorError as exc:
            return "dns", f"RFC 8659 3: {exc.message}"
        decision = caa_decision(
            climb,
            identifier=name,
            wildcard=identifier.value.startswith("*."),
            ca_domains=self.caa.ca_domains,
            account_uri=account_uri,
            method=method,
        )
        return None if decision.allowed else ("caa", decision.detail)
