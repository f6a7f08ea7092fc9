"""RFC 7807 problem documents with the RFC 8555 6.7 error types: the only place CandorError becomes ACME.

Internal details never leak: a kind Candor does not map is answered as serverInternal with a generic detail,
and the real error goes to the log.
"""

from __future__ import annotations

import json
import logging

from starlette.responses import Response

from candor.acme.jwk import JwsError
from candor.errors import CandorError, ErrorKind, RateLimitError
from candor.storage.group_commit import Overloaded

log = logging.getLogger(__name__)
URN = "urn:ietf:params:acme:error:"

# ErrorKind -> (ACME error type, HTTP status). RFC 8555 6.7; statuses as Boulder's WFE sends them.
_BY_KIND: dict[ErrorKind, tuple[str, int]] = {
    ErrorKind.MALFORMED: ("malformed", 400),
    ErrorKind.BAD_CSR: ("badCSR", 400),
    ErrorKind.BAD_PUBLIC_KEY: ("badPublicKey", 400),
    ErrorKind.REJECTED_IDENTIFIER: ("rejectedIdentifier", 400),
    ErrorKind.UNAUTHORIZED: ("unauthorized", 403),
    ErrorKind.POLICY: ("unauthorized", 403),
    ErrorKind.NOT_FOUND: ("malformed", 404),
    ErrorKind.CONFLICT: ("orderNotReady", 403),
    ErrorKind.UNAVAILABLE: ("serverInternal", 503),
    ErrorKind.RATE_LIMITED: ("rateLimited", 429),
}
_JWS_STATUS = {"badNonce": 400, "unauthorized": 403, "accountDoesNotExist": 400}


class AcmeProblem(Exception):
    """Raised by a resource handler to answer with a specific ACME error type."""

    def __init__(
        self,
        acme_type: str,
        detail: str,
        status: int = 400,
        headers: dict[str, str] | None = None,
        subproblems: list[dict[str, object]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.acme_type, self.detail, self.status = acme_type, detail, status
        self.headers = headers or {}
        self.subproblems = subproblems or []  # RFC 8555 6.7.1: one per identifier, each with its own type


def problem_type_for(kind: ErrorKind) -> tuple[str, int]:
    return _BY_KIND.get(kind, ("serverInternal", 500))


def problem(acme_type: str, detail: str, status: int, **extra: object) -> Response:
    body = {"type": URN + acme_type, "detail": detail, "status": status, **extra}
    return Response(json.dumps(body), status_code=status, media_type="application/problem+json")


def from_error(error: Exception) -> Response:
    if isinstance(error, AcmeProblem):
        subproblems: dict[str, object] = {"subproblems": error.subproblems} if error.subproblems else {}
        response = problem(error.acme_type, error.detail, error.status, **subproblems)
        response.headers.update(error.headers)
        return response
    if isinstance(error, JwsError):
        extra = {"algorithms": list(error.algorithms)} if error.algorithms else {}
        return problem(error.acme_type, error.message, _JWS_STATUS.get(error.acme_type, 400), **extra)
    if isinstance(error, RateLimitError):  # RFC 8555 6.6: rateLimited, with Retry-After
        response = problem("rateLimited", error.message, 429)
        response.headers["Retry-After"] = str(error.retry_after)
        return response
    if isinstance(error, Overloaded):  # a write queue is full: retry later
        response = problem("serverInternal", "the server is busy; retry later", 503)
        response.headers["Retry-After"] = "1"
        return response
    if isinstance(error, CandorError) and error.kind in _BY_KIND:
        acme_type, status = _BY_KIND[error.kind]
        return problem(acme_type, error.message, status)
    log.error("ACME request failed", exc_info=error)
    return problem("serverInternal", "the server could not process the request", 500)
