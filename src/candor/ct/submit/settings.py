"""``[ct.submit]`` in candor.toml: where Candor submits precertificates and certificates.

Kept free of imports from the rest of Candor so that :mod:`candor.config` can use it. Paths are relative to
the data directory. Example::

    [ct.submit]
    log_list = "ct/log_list.json"      # the browsers' v3 JSON format (Chrome's or Apple's list, or your own)
    attempt_timeout_seconds = 5        # one HTTP request to one log
    attempts = 3                       # per log, on connection errors, timeouts, 5xx and 429
    deadline_seconds = 30              # the whole submission of one precertificate
    margin = 1                         # extra SCTs to wait for once the policy is met (if logs remain)

    [[ct.submit.logs]]                 # per-log overrides, by the log list's log_id
    log_id = "base64 SHA-256 of the key"
    url = "http://10.0.0.5:8080/ct/log-a/"   # reach the log at another address
    include_root = true                # this log wants the root in the submitted chain
    # disabled = true                  # never submit to this log
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CtLogOverride(_Strict):
    log_id: str  # base64, as in the log list
    url: str | None = None  # submission URL to use instead of the list's
    attempt_timeout_seconds: float | None = Field(default=None, gt=0, le=120)
    include_root: bool = False
    disabled: bool = False

    @field_validator("log_id")
    @classmethod
    def _log_id(cls, value: str) -> str:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("must be base64") from None
        if len(raw) != 32:
            raise ValueError("must be a base64 SHA-256 (32 bytes)")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value

    @property
    def log_id_bytes(self) -> bytes:
        return base64.b64decode(self.log_id)


class CtSubmitSettings(_Strict):
    log_list: Path | None = None  # None: no CT submission configured (only private issuers may issue)
    attempt_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    attempts: int = Field(default=3, ge=1, le=10)
    backoff_seconds: float = Field(default=0.5, ge=0, le=60)  # doubled after each failed attempt
    max_backoff_seconds: float = Field(default=8.0, ge=0, le=600)
    deadline_seconds: float = Field(default=30.0, gt=0, le=600)
    margin: int = Field(default=1, ge=0, le=5)
    wait_for_all: bool = False  # wait for every selected log instead of stopping once the policy is met
    max_future_skew_seconds: float = Field(default=10.0, ge=0, le=300)  # SCT timestamps ahead of our clock
    final_retry_max_seconds: int = Field(default=3600, ge=1, le=86_400)  # backoff cap for queued final certs
    logs: list[CtLogOverride] = Field(default_factory=list)

    @model_validator(mode="after")
    def _distinct(self) -> CtSubmitSettings:
        ids = [o.log_id for o in self.logs]
        if len(set(ids)) != len(ids):
            raise ValueError("each [[ct.submit.logs]] override names a different log_id")
        return self

    def log_list_path(self, data_dir: Path) -> Path | None:
        if self.log_list is None:
            return None
        return self.log_list if self.log_list.is_absolute() else data_dir / self.log_list

    def override_for(self, log_id: bytes) -> CtLogOverride | None:
        return next((o for o in self.logs if o.log_id_bytes == log_id), None)


__all__ = ["CtLogOverride", "CtSubmitSettings"]
