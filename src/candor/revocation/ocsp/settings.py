"""``[ocsp]`` settings: how long responses are valid, how they are signed, served and shared."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class OcspRedisSettings(BaseModel):
    """Redis shared by several responder nodes (DESIGN.md: stateless front ends)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = "redis://127.0.0.1:6379/0"
    prefix: str = Field(default="candor:ocsp:", min_length=1, max_length=64)


class OcspSettings(BaseModel):
    """Validated at start-up. Add to ``CandorConfig`` as ``ocsp: OcspSettings = OcspSettings()``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # BR 4.9.10: between 8 hours and 10 days. Re-signed after half of it, and no later than 4 days after
    # thisUpdate (BR 4.9.10 for validity of 16 hours or more).
    validity_hours: int = Field(default=72, ge=8, le=240)
    # Also pre-sign a SHA-256 CertID in each response (RFC 9919), under the same signature.
    sha256_cert_ids: bool = True
    # Delegated responder certificates are re-issued once this fraction of their validity has passed.
    responder_rotation_fraction: float = Field(default=0.5, gt=0.0, lt=1.0)
    # Issuers (by name) whose OCSP responses the CA key itself signs instead of a delegated responder.
    sign_with_issuer: tuple[str, ...] = ()
    # Requests carrying a nonce are answered from the pre-signed store (RFC 5019 2.1.1: no nonce echo).
    # "sign" signs a response for such a request when it arrives, with the nonce echoed (RFC 6960 4.4.1, RFC 9654),
    # in the serving process, with the pre-signer's responder key.
    nonce: Literal["cache", "sign"] = "cache"
    # At most this many signatures on demand at once per serving process (a thread each); a nonce request that
    # finds them all busy gets the pre-signed response, as with nonce = "cache".
    on_demand_concurrency: int = Field(default=2, ge=1, le=64)
    # HTTP: Cache-Control max-age is the time to nextUpdate, capped at this (Boulder's responder caps too).
    max_age_cap_seconds: int = Field(default=86400, ge=0)
    # Largest POST body read; Boulder caps at 10,000 bytes. GET URLs beyond RFC 6960 App. A's 255 bytes
    # still work up to this size.
    max_request_bytes: int = Field(default=10_000, ge=256, le=65_536)
    redis: OcspRedisSettings | None = None

    @property
    def validity(self) -> timedelta:
        return timedelta(hours=self.validity_hours)

    @property
    def refresh_after(self) -> timedelta:
        """BR 4.9.10: under 16 hours of validity, refresh at half; else at half but at most 4 days."""
        return min(self.validity / 2, timedelta(days=4))

    @model_validator(mode="after")
    def _names(self) -> OcspSettings:
        if len(set(self.sign_with_issuer)) != len(self.sign_with_issuer):
            raise ValueError("sign_with_issuer names an issuer twice")
        return self
