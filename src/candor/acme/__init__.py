"""The ACME front end (RFC 8555): request authentication first; resources and the server come on top of it.

Nothing here touches a CA key or the database: callers pass in what needs state (account keys, nonces,
EAB MAC keys) as small callables.
"""

from __future__ import annotations

from candor.acme.jwk import (
    AcmeErrorType,
    JwsError,
    PublicKey,
    jwk_thumbprint,
    key_authorization,
    key_from_jwk,
    public_jwk,
)
from candor.acme.jws import (
    MAX_BODY_BYTES,
    SUPPORTED_ALGS,
    ParsedJws,
    VerifiedRequest,
    parse_flattened_jws,
    verify_eab,
    verify_request,
)

__all__ = [
    "MAX_BODY_BYTES",
    "SUPPORTED_ALGS",
    "AcmeErrorType",
    "JwsError",
    "ParsedJws",
    "PublicKey",
    "VerifiedRequest",
    "jwk_thumbprint",
    "key_authorization",
    "key_from_jwk",
    "parse_flattened_jws",
    "public_jwk",
    "verify_eab",
    "verify_request",
]
