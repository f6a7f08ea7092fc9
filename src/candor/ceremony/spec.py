"""The ceremony file: the whole hierarchy in one reviewable TOML document, validated before any key exists."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from candor.config import format_validation_error, parse_toml
from candor.errors import CandorError, ErrorKind
from candor.policy.algorithms import ALLOWED, KeyAlgorithm
from candor.profiles.ca import ROOT_MAX_DAYS, ROOT_MIN_DAYS, TLS_POLICIES
from candor.profiles.names import CASubject

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KeySpec(_Strict):
    """Where a key is generated and of what kind. Stores are the ones named in candor.toml [keys.stores]."""

    store: str
    algorithm: KeyAlgorithm

    @field_validator("algorithm", mode="before")
    @classmethod
    def _algorithm(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() not in {a.value for a in KeyAlgorithm}:
            raise ValueError(f"{value!r} is not an allowed CA key algorithm (allowed: {ALLOWED})")
        return value.strip().lower() if isinstance(value, str) else value


def _slug(value: str) -> str:
    if not _SLUG.match(value):
        raise ValueError("must be 1-48 of a-z, 0-9 and '-', starting with a letter or digit")
    return value


class RootSpec(_Strict):
    name: str
    key: KeySpec
    subject: CASubject
    validity_days: int = Field(default=9125, ge=ROOT_MIN_DAYS, le=ROOT_MAX_DAYS)  # BR 7.1.2.1.1
    crl_validity_days: int = Field(default=365, ge=1, le=365)  # BR 7.2 / 4.9.7: CA-scope CRL <= 12 months

    _name = field_validator("name")(_slug)


class OcspSpec(_Strict):
    """How OCSP responses for an issuer are signed: by a delegated responder (BR 7.1.2.8), or the CA key."""

    mode: Literal["delegated", "issuer"] = "delegated"
    key: KeySpec | None = None
    validity_days: int = Field(default=30, ge=1, le=90)

    @model_validator(mode="after")
    def _key(self) -> OcspSpec:
        if self.mode == "delegated" and self.key is None:
            raise ValueError("a delegated OCSP responder needs a 'key'")
        if self.mode == "issuer" and self.key is not None:
            raise ValueError("mode 'issuer' signs with the CA key; remove 'key'")
        return self


class TlsIssuerSpec(_Strict):
    name: str
    key: KeySpec
    subject: CASubject
    validity_days: int = Field(default=1826, ge=30, le=3653)
    policy: Literal["dv", "ov", "iv", "ev"] = "dv"
    ocsp: OcspSpec

    _name = field_validator("name")(_slug)


class TimestampingSpec(_Strict):
    name: str
    key: KeySpec
    subject: CASubject
    validity_days: int = Field(default=3652, ge=30, le=135 * 30)  # CSBR 6.3.2 caps TSA certificates at 135 months

    _name = field_validator("name")(_slug)

    @field_validator("key")
    @classmethod
    def _strength(cls, key: KeySpec) -> KeySpec:
        if key.algorithm is KeyAlgorithm.RSA_2048:
            raise ValueError("time-stamping keys must be RSA-3072 or larger, or ECDSA (CSBR 6.1.5.2)")
        return key


class CtLogSpec(_Strict):
    name: str
    operator: str = Field(min_length=1, max_length=64)
    key: KeySpec

    _name = field_validator("name")(_slug)

    @field_validator("key")
    @classmethod
    def _p256(cls, key: KeySpec) -> KeySpec:
        if key.algorithm is not KeyAlgorithm.ECDSA_P256:
            raise ValueError("CT log keys are ECDSA P-256 (RFC 6962 section 2.1.4; browsers' log policies)")
        return key


class CeremonyHeader(_Strict):
    name: str = Field(min_length=1, max_length=128)
    base_url: str
    # A private or test hierarchy (URLs on a loopback or internal name) must say so; see candor.lint.
    private: bool = False

    @field_validator("base_url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not url.startswith("http://") or url.endswith("/") or " " in url:
            raise ValueError("must be an http:// URL without a trailing slash (BR 7.1.2.11.2, 7.1.2.10.3)")
        return url


class CeremonySpec(_Strict):
    ceremony: CeremonyHeader
    root: RootSpec
    tls_issuers: list[TlsIssuerSpec] = Field(min_length=1)
    timestamping: TimestampingSpec | None = None
    ct_logs: list[CtLogSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _distinct(self) -> CeremonySpec:
        names = [self.root.name, *(i.name for i in self.tls_issuers), *(c.name for c in self.ct_logs)]
        if self.timestamping is not None:
            names.append(self.timestamping.name)
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"names must be distinct; repeated: {', '.join(duplicates)}")
        operators = [c.operator for c in self.ct_logs]
        if len(set(operators)) != len(operators):
            raise ValueError("each CT log needs its own operator (CT policies count distinct operators)")
        return self

    def stores(self) -> set[str]:
        keys = [self.root.key, *(i.key for i in self.tls_issuers), *(c.key for c in self.ct_logs)]
        keys += [i.ocsp.key for i in self.tls_issuers if i.ocsp.key is not None]
        if self.timestamping is not None:
            keys.append(self.timestamping.key)
        return {k.store for k in keys}


def load_ceremony(path: Path) -> tuple[CeremonySpec, str]:
    """The validated ceremony and the SHA-256 of the file's bytes (recorded in the audit log)."""
    raw = parse_toml(path)
    try:
        spec = CeremonySpec.model_validate(raw)
    except ValidationError as exc:
        raise CandorError(ErrorKind.CONFIG, format_validation_error(exc, str(path))) from None
    return spec, hashlib.sha256(path.read_bytes()).hexdigest()


__all__ = ["TLS_POLICIES", "CeremonySpec", "KeySpec", "load_ceremony"]
