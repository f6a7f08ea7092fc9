"""What a validation attempt found: the outcome shown to the subscriber and the record kept for the audit log.

A failure carries an RFC 8555 §6.7 problem type (without the ``urn:ietf:params:acme:error:`` prefix, which the
ACME edge adds) and a one-line detail that is safe to show the subscriber: it names the rule and what was
seen, and never carries a stack trace or an address the validator did not itself contact. ``records`` list
every endpoint the validator tried, in order, for the audit log (BR 5.4.1: the validation method, the
addresses and the results).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from candor.clock import ensure_utc

__all__ = ["PROBLEM_URN_PREFIX", "Contact", "ProblemType", "ValidationResult"]

PROBLEM_URN_PREFIX = "urn:ietf:params:acme:error:"  # RFC 8555 §6.7

# RFC 8555 §6.7 error types a validator may return.
ProblemType = Literal[
    "connection", "unauthorized", "incorrectResponse", "tls", "dns", "rejectedIdentifier", "malformed", "caa"
]
_PROBLEM_TYPES = frozenset(get_args(ProblemType))


@dataclass(frozen=True)
class Contact:
    """One endpoint the validator considered: what, where, and what happened.

    ``attempted`` is False when no packet was sent to it (the address policy refused it, or the time budget
    was spent); ``connected`` is True when a TCP connection was made. ``status`` is the HTTP status code,
    when one was received.
    """

    url: str
    ip: str
    port: int
    attempted: bool
    connected: bool
    status: int | None
    outcome: str

    def __post_init__(self) -> None:
        if self.connected and not self.attempted:
            raise ValueError("a Contact cannot be connected without being attempted")


@dataclass(frozen=True)
class ValidationResult:
    """The outcome of one challenge validation."""

    ok: bool
    method: str  # BR method, e.g. "3.2.2.4.19" (ACME http-01) or "3.2.2.5.7" (ACME tls-alpn-01 for an IP)
    problem_type: ProblemType | None  # None exactly when ok
    detail: str  # one line, safe to show the subscriber
    records: tuple[Contact, ...]
    checked_at: datetime  # from the injected clock, UTC: when the attempt started (BR 4.2.1 reuse period)
    elapsed: float  # seconds, measured on the monotonic clock

    def __post_init__(self) -> None:
        ensure_utc(self.checked_at)
        if self.ok != (self.problem_type is None):
            raise ValueError("a ValidationResult has a problem type exactly when it is not ok")
        if self.problem_type is not None and self.problem_type not in _PROBLEM_TYPES:
            raise ValueError(f"unknown RFC 8555 §6.7 problem type {self.problem_type!r}")
        if "\n" in self.detail or "\r" in self.detail:
            raise ValueError("a ValidationResult detail is one line")
        if self.elapsed < 0:
            raise ValueError("elapsed time cannot be negative")

    @property
    def problem_urn(self) -> str | None:
        """The full RFC 8555 §6.7 type URN, or None for a success."""
        return None if self.problem_type is None else PROBLEM_URN_PREFIX + self.problem_type

    @property
    def contacted(self) -> tuple[Contact, ...]:
        """The records of endpoints a TCP connection was actually made to."""
        return tuple(record for record in self.records if record.connected)
