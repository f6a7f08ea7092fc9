"""Authorizations and challenges (RFC 8555 7.5): reading, deactivation, and validation when a challenge is
POSTed.
"""

from __future__ import annotations

import json

from candor.acme.core import Reply, ServiceCore, jwk_of, retry_after
from candor.acme.jwk import jwk_thumbprint, key_authorization
from candor.acme.jws import VerifiedRequest
from candor.acme.problems import AcmeProblem
from candor.acme.records import (
    authorization_json,
    challenge_json,
    orders_with,
    owned,
    refresh_order,
)
from candor.policy.names import normalize_identifier
from candor.ra.limits import check_validation_attempt
from candor.storage.models_acme import Challenge
from candor.storage.models_issuance import Authorization
from candor.validation import ValidationResult


class Challenges(ServiceCore):
    """Authorizations and challenges (RFC 8555 7.5), and the record of each validation attempt."""

    # -- authorizations and challenges (RFC 8555 7.5) ---------------------------------------------------
    def authorization(self, request: VerifiedRequest, authorization_id: int) -> Reply:
        with self.db.session() as session:
            authorization = owned(session, Authorization, authorization_id, self.account_for(session, request))
            if not request.is_post_as_get:  # RFC 8555 7.5.2: the only change a client may ask for
                if request.payload_json() != {"status": "deactivated"}:
                    raise AcmeProblem("malformed", 'an authorization can only be updated to {"status": "deactivated"}')
                if authorization.status not in ("pending", "valid"):
                    raise AcmeProblem("malformed", f"a {authorization.status} authorization cannot be deactivated")
                authorization.status = "deactivated"
                for order in orders_with(session, authorization):
                    refresh_order(session, order)
            body = authorization_json(session, authorization, self.settings.base)
            processing = any(c["status"] == "processing" for c in body["challenges"])
            return 200, body, retry_after("processing" if processing else body["status"])

    def challenge(self, request: VerifiedRequest, challenge_id: int) -> Reply:
        with self.db.session() as session:
            account = self.account_for(session, request)
            challenge = owned(session, Challenge, challenge_id, account)
            authorization = session.get(Authorization, challenge.authorization_id)
            assert authorization is not None
            start = not request.is_post_as_get and challenge.status == "pending" and authorization.status == "pending"
            if not start:
                return self._challenge_reply(challenge)
            if authorization.expires_at <= self.clock.now():
                raise AcmeProblem("malformed", "the authorization has expired", 403)
            check_validation_attempt(
                session, name=authorization.identifier_value, now=self.clock.now(), limits=self.settings.limits
            )
            challenge.status = "processing"
            identifier = normalize_identifier(authorization.identifier_type, authorization.identifier_value)
            jwk = jwk_of(account)
            account_url = self._account_url(account)
            token, challenge_type = challenge.token, challenge.type
        result = self.validator.validate(
            challenge_type, identifier, token, key_authorization(token, jwk), account_uri=account_url
        )
        return self._record_validation(challenge_id, result, jwk_thumbprint(jwk))

    def _challenge_reply(self, challenge: Challenge) -> Reply:
        # RFC 8555 7.1: the "index" link on every resource, and for a challenge its authorization ("up").
        base = self.settings.base
        links = f'<{base}/authz/{challenge.authorization_id}>;rel="up", <{base}/directory>;rel="index"'
        return 200, challenge_json(challenge, base), {"Link": links, **retry_after(challenge.status)}

    def _record_validation(self, challenge_id: int, result: ValidationResult, thumbprint: str) -> Reply:
        with self.db.session() as session:
            challenge = session.get(Challenge, challenge_id)
            assert challenge is not None
            authorization = session.get(Authorization, challenge.authorization_id)
            assert authorization is not None
            challenge.validated_at = result.checked_at
            if result.ok:
                challenge.status, authorization.status = "valid", "valid"
                authorization.method, authorization.validated_at = result.method, result.checked_at
                authorization.caa_checked_at = result.checked_at  # CAA is part of every successful validation
            else:
                challenge.status, authorization.status = "invalid", "invalid"
                challenge.error = json.dumps({"type": result.problem_urn, "detail": result.detail, "status": 403})
            for order in orders_with(session, authorization):
                refresh_order(session, order)
            self.audit.record(
                session,
                actor=f"acme:{thumbprint}",
                action="validation.attempt",
                subject=authorization.identifier_value,
                outcome="success" if result.ok else "failure",
                details={
                    "challenge": challenge.type,
                    "method": result.method,
                    "problem": result.problem_type,
                    "detail": result.detail,
                    "contacts": [f"{c.url} {c.ip}:{c.port} {c.outcome}" for c in result.records],
                },
            )
            return self._challenge_reply(challenge)
