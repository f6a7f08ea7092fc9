"""The one internal error type.

Every failure inside Candor is a :class:`CandorError` with a :class:`ErrorKind`. Protocol edges (the CLI,
ACME, OCSP, the TSA) map the kind to their own error vocabulary; nothing deeper raises protocol errors, and
nothing matches on message strings. The message is one line meant for an operator: it names the thing that
is wrong and what is allowed, and it never carries secrets.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    CONFIG = "config"  # a setting or input file is invalid
    KEY = "key"  # a key store or key cannot be used (bad PIN, bad passphrase, missing key)
    POLICY = "policy"  # a request violates a rule (BR, RFC, local policy) not covered by a finer kind below
    MALFORMED = "malformed"  # a request that cannot be parsed (RFC 8555 malformed)
    BAD_CSR = "bad_csr"  # a certificate request Candor will not certify as asked (RFC 8555 badCSR)
    BAD_PUBLIC_KEY = "bad_public_key"  # a key that key policy refuses (RFC 8555 badPublicKey; BR 6.1.5)
    REJECTED_IDENTIFIER = "rejected_identifier"  # a name Candor will never issue for (RFC 8555 rejectedIdentifier)
    UNAUTHORIZED = "unauthorized"  # the requester has not proved control, or acts on what is not theirs
    RATE_LIMITED = "rate_limited"  # a rate limit applies; the error says when to retry
    CONFLICT = "conflict"  # a uniqueness rule held by the database refused a write
    NOT_FOUND = "not_found"
    STORAGE = "storage"  # the database cannot be reached or migrated
    INTEGRITY = "integrity"  # stored data fails verification (audit chain, hashes)
    LINT = "lint"  # a linter reported errors, or could not run
    UNAVAILABLE = "unavailable"  # a dependency is down; retrying later may help
    INTERNAL = "internal"


class CandorError(Exception):
    """A failure with a kind and a one-line, secret-free message."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    def __str__(self) -> str:
        return self.message


class RateLimitError(CandorError):
    """A rate limit refused the request; ``retry_after`` is the number of seconds until it would pass."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(ErrorKind.RATE_LIMITED, message)
        self.retry_after = max(1, retry_after)
