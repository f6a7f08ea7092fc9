"""Authorizations and challenges (RFC 8555 7.5): reading, deactivation, and validation when a challenge is
POSTed.
"""

from __future__ import annotations

import json
from typing import Any

from candor.acme.core import Reply, ServiceCore, retry_after
from candor.acme.jwk import jwk_thumbprint, key_authorization
from candor.acme.jws import VerifiedRequest
from candor.acme.problems import AcmeProblem
from candor.acme.records import authorization_json, challenge_json, require_owner
from candor.policy.names import normalize_identifier
from candor.ra.limits import check_validation_attempt
from candor.storage import acme_views
from candor.storage.acme_views import ChallengeView
from candor.validation import ValidationResult


class Challenges(ServiceCore):
    """Authorizations and challenges (RFC 8555 7.5), and the record of each validation attempt."""

    # -- authorizations and challenges (RFC 8555 7.5) ---------------------------------------------------
    def authorization(self, request: VerifiedRequest, authorization_id: int) -> Reply:
        account_id = self.account_id(request)
        transaction = self.db.reader() if request.is_post_as_get else self.db.connection()
        with transaction as connection:
            authorization = acme_views.authorization_view(connection, authorization_id)
            require_owner(authorization, account_id, "authorization")
            assert authorization is not None
            if not request.is_post_as_get:  # RFC 8555 7.5.2: the only change a client may ask for
                if request.payload_json() != {"status": "deactivated"}:
                    raise AcmeProblem("malformed", 'an authorization can only be updated to {"status": "deactivated"}')
                if authorization.status not in ("pending", "valid"):
                    raise AcmeProblem("malformed", f"a {authorization.status} authorization cannot be deactivated")
                acme_views.deactivate_authorization(connection, authorization_id)
                acme_views.refresh_orders(connection, authorization_id)
                authorization = acme_views.authorization_view(connection, authorization_id)
                assert authorization is not None
            challenges = acme_views.challenges_of(connection, authorization_id)
        body = authorization_json(authorization, challenges, self.settings.base)
        processing = any(c.status == "processing" for c in challenges)
        return 200, body, retry_after("processing" if processing else body["status"])

    def challenge(self, request: VerifiedRequest, challenge_id: int) -> Reply:
        account_id = self.account_id(request)
        with self.db.connection() as connection:
            found = acme_views.challenge_view(connection, challenge_id)
            require_owner(found[1] if found is not None else None, account_id, "challenge")
            assert found is not None
            challenge, authorization = found
            start = not request.is_post_as_get and challenge.status == "pending" and authorization.status == "pending"
            if not start:
                return self._challenge_reply(challenge)
            if authorization.expires_at <= self.clock.now():
                raise AcmeProblem("malformed", "the authorization has expired", 403)
            check_validation_attempt(
                connection, name=authorization.identifier_value, now=self.clock.now(), limits=self.settings.limits
            )
            if not acme_views.start_challenge(connection, challenge_id):  # another request started it first
                current = acme_views.challenge_view(connection, challenge_id)
                assert current is not None
                return self._challenge_reply(current[0])
            identifier = normalize_identifier(authorization.identifier_type, authorization.identifier_value)
            jwk: dict[str, Any] = json.loads(acme_views.account_jwk(connection, account_id) or "{}")
        account_url = f"{self.settings.base}/acct/{account_id}"
        result = self.validator.validate(
            challenge.type,
            identifier,
            challenge.token,
            key_authorization(challenge.token, jwk),
            account_uri=account_url,
        )
        return self._record_validation(challenge, authorization.identifier_value, result, jwk_thumbprint(jwk))

    def _challenge_reply(self, challenge: ChallengeView) -> Reply:
        # RFC 8555 7.1: the "index" link on every resource, and for a challenge its authorization ("up").
        base = self.settings.base
        links = f'<{base}/authz/{challenge.authorization_id}>;rel="up", <{base}/directory>;rel="index"'
        return 200, challenge_json(challenge, base), {"Link": links, **retry_after(challenge.status)}

    def _record_validation(
        self, challenge: ChallengeView, name: str, result: ValidationResult, thumbprint: str
    ) -> Reply:
        error = None
        if not result.ok:
            error = json.dumps({"type": result.problem_urn, "detail": result.detail, "status": 403})
        event = self.audit.prepare(  # before the write lock: the transaction only inserts it
            actor=f"acme:{thumbprint}",
            action="validation.attempt",
            subject=name,
            outcome="success" if result.ok else "failure",
            details={
                "challenge": challenge.type,
                "method": result.method,
                "problem": result.problem_type,
                "detail": result.detail,
                "contacts": [f"{c.url} {c.ip}:{c.port} {c.outcome}" for c in result.records],
            },
            dialect=self.db.engine.dialect,
        )
        with self.db.connection() as connection:
            recorded = acme_views.record_validation(
                connection, challenge, method=result.method, checked_at=result.checked_at, error=error
            )
            acme_views.refresh_orders(connection, challenge.authorization_id)
            self._append(connection, event)
        return self._challenge_reply(recorded)
