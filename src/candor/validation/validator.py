"""One entry point for the challenge types Candor validates, for the RA and the ACME front end."""

from __future__ import annotations

from dataclasses import dataclass

from candor.clock import Clock
from candor.policy.names import Identifier
from candor.validation.addresses import AddressPolicy, Resolver
from candor.validation.http01 import validate_http01
from candor.validation.outcome import ValidationResult
from candor.validation.tlsalpn01 import validate_tlsalpn01


@dataclass(frozen=True)
class ChallengeValidator:
    resolver: Resolver
    policy: AddressPolicy
    clock: Clock
    timeout: float = 10.0

    def validate(
        self, challenge_type: str, identifier: Identifier, token: str, key_authorization: str
    ) -> ValidationResult:
        if challenge_type == "http-01":
            return validate_http01(
                identifier, token, key_authorization,
                resolver=self.resolver, policy=self.policy, clock=self.clock, timeout=self.timeout,
            )  # fmt: skip
        if challenge_type == "tls-alpn-01":
            return validate_tlsalpn01(
                identifier, token, key_authorization,
                resolver=self.resolver, policy=self.policy, clock=self.clock, timeout=self.timeout,
            )  # fmt: skip
        raise ValueError(f"no validator for challenge type {challenge_type!r}")
