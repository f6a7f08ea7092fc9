"""``[tsa]`` settings: the time-stamp policy, what goes into each token, and how the service is served.

Validated at start-up (``CandorConfig.tsa``); a data directory without a ``[tsa]`` section serves no TSA.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")


def check_oid(value: str) -> str:
    """A dotted OBJECT IDENTIFIER (X.660): a first arc of 0-2, a second arc under 40 when the first is 0 or 1."""
    if not _OID.match(value):
        raise ValueError(f"{value!r} is not a dotted OBJECT IDENTIFIER such as 1.3.6.1.4.1.32473.1")
    first, second = (int(arc) for arc in value.split(".")[:2])
    if first < 2 and second >= 40:
        raise ValueError(f"{value!r}: the second arc must be below 40 under arc {first} (X.690 8.19.4)")
    return value


class TsaSettings(BaseModel):
    """The time-stamping authority (RFC 3161; CSBR 6.8). Add to ``CandorConfig`` as ``tsa: TsaSettings | None``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # TSTInfo.policy (RFC 3161 2.4.2): the TSA policy under which every token is issued, from the operator's
    # TSA practice statement. A request naming another reqPolicy is refused (unacceptedPolicy).
    policy: str
    # Accuracy (RFC 3161 2.4.2) stated in every token, in milliseconds: the bound the clock monitor holds the
    # clock to. ETSI EN 319 421's best-practice policies ask for 1 second or better.
    accuracy_ms: int = Field(default=1000, ge=1, le=60_000)
    # Fractional-second digits of genTime (0 = whole seconds, at most 6 = microseconds; trailing zeros are
    # always dropped, RFC 3161 2.4.2).
    precision_digits: int = Field(default=3, ge=0, le=6)
    # The time-stamping sub-CA that certifies the TSA units (made by the key ceremony).
    issuer: str = Field(default="tsa-ca1", min_length=1, max_length=64)
    # With certReq, put the unit's issuing CA certificate after the unit's in `certificates` (the chain up to
    # but excluding the root), so verifiers need only the root.
    include_chain: bool = True
    # Name the unit in TSTInfo.tsa (RFC 3161 2.4.2: it must be the unit certificate's subject).
    include_tsa_name: bool = True
    # Largest request body read (a TimeStampReq with a SHA-512 imprint and a nonce is about 100 bytes).
    max_request_bytes: int = Field(default=4096, ge=256, le=65_536)
    # How often every serving process reads the units table (a unit certified ahead of time is switched to
    # without a restart at its notBefore).
    unit_refresh_seconds: float = Field(default=5.0, ge=0.1, le=300.0)
    # Alert (log and audit) this many days before the current unit's key usage period ends (CSBR 6.3.2: 15
    # months after notBefore) when no successor is certified.
    rotation_warning_days: int = Field(default=30, ge=1, le=180)

    @field_validator("policy")
    @classmethod
    def _policy(cls, value: str) -> str:
        return check_oid(value)
