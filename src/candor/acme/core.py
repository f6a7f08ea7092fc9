"""What every ACME resource handler shares: the settings, the signer and validator interfaces, the account
lookup for JWS verification, and the audit helper. The resources themselves are in accounts, ordering,
challenges, revocation and renewal; :class:`candor.acme.service.AcmeService` puts them together.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from candor.acme.jwk import key_from_jwk
from candor.acme.jws import VerifiedRequest
from candor.acme.problems import AcmeProblem
from candor.audit import AuditLog, PreparedEvent
from candor.clock import Clock
from candor.errors import CandorError, ErrorKind
from candor.policy.dated import CAA_MAX_AGE
from candor.policy.names import Identifier
from candor.ra.limits import Limits
from candor.storage import Database
from candor.storage.fastsql import run
from candor.storage.models_issuance import Account
from candor.validation import ValidationResult

Reply = tuple[int, Any, dict[str, str]]
# BR 3.2.2.8: the signer refuses a CAA check 8 hours old on a public issuer; finalize looks again a little before
# that, so that a check turning 8 hours old between this RA's look and the signer's (which reads the clock later)
# is rechecked instead of making the order invalid
CAA_RECHECK_AFTER = CAA_MAX_AGE - timedelta(minutes=10)
_ACCOUNT_KEY = select(Account.status, Account.jwk).where(Account.id == bindparam("id"))  # built once

MAX_ID = 2**63 - 1  # ids are 64-bit signed integers in every database Candor runs on


class Finalizer(Protocol):
    """The signer as the ACME front end sees it."""

    def finalize(self, order_id: int, csr: bytes) -> Any: ...


class Validator(Protocol):
    def validate(
        self, challenge_type: str, identifier: Identifier, token: str, key_authorization: str, *, account_uri: str
    ) -> ValidationResult: ...

    def recheck_caa(self, identifier: Identifier, *, method: str, account_uri: str) -> tuple[str, str] | None:
        """CAA again, at finalization: None when issuance is allowed, else (RFC 8555 problem type, detail)."""
        ...


@dataclass(frozen=True)
class AcmeSettings:
    base_url: str  # the server's external base; ACME lives under {base_url}/acme
    issuer: str  # the issuing CA that signs ACME orders
    profiles: dict[str, str] = field(default_factory=lambda: {"dv": "Domain-validated TLS server certificate"})
    terms_of_service: str | None = None
    website: str | None = None
    caa_identities: tuple[str, ...] = ()
    challenge_types: tuple[str, ...] = ("http-01", "tls-alpn-01")  # plus dns-01 when DNS is configured
    order_lifetime: timedelta = timedelta(days=7)
    authorization_lifetime: timedelta = timedelta(days=7)
    limits: Limits = field(default_factory=Limits)
    external_account_required: bool = False  # RFC 8555 7.3.4
    eab_secret: str | None = field(default=None, repr=False)  # derives EAB MAC keys; None: no EAB at all
    caa_recheck_after: timedelta = CAA_RECHECK_AFTER

    def __post_init__(self) -> None:
        if self.external_account_required and self.eab_secret is None:
            raise CandorError(ErrorKind.CONFIG, "external account binding is required but no EAB secret is set")

    @property
    def base(self) -> str:
        return f"{self.base_url}/acme"


class ServiceCore:
    """The state and helpers every resource handler uses; the resources are mixed in by AcmeService."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        settings: AcmeSettings,
        finalizer: Finalizer,
        validator: Validator,
    ) -> None:
        self.db, self.clock, self.settings = db, clock, settings
        self.finalizer, self.validator = finalizer, validator
        self.audit = AuditLog(clock)
        self._chains: dict[int, list[bytes]] = {}  # issuer id -> the chain served with its certificates

    # -- directory --------------------------------------------------------------------------------------
    def directory(self) -> dict[str, Any]:
        base = self.settings.base
        meta: dict[str, Any] = {
            "profiles": self.settings.profiles,
            "externalAccountRequired": self.settings.external_account_required,
        }
        if self.settings.terms_of_service:
            meta["termsOfService"] = self.settings.terms_of_service
        if self.settings.website:
            meta["website"] = self.settings.website
        if self.settings.caa_identities:
            meta["caaIdentities"] = list(self.settings.caa_identities)
        return {
            "newNonce": f"{base}/new-nonce",
            "newAccount": f"{base}/new-account",
            "newOrder": f"{base}/new-order",
            "revokeCert": f"{base}/revoke-cert",
            "keyChange": f"{base}/key-change",
            "renewalInfo": f"{base}/renewal-info",
            "meta": meta,
        }

    def account_key(self, kid: str, connection: Connection) -> Any:
        """The key of the valid account whose URL is *kid* (for JWS verification), or None. Every request asks
        this: one Core SELECT, in a read-only transaction (:mod:`candor.acme.app`)."""
        prefix = f"{self.settings.base}/acct/"
        account = kid[len(prefix) :] if kid.startswith(prefix) else ""
        # ASCII digits only (str.isdigit() takes "²", which int() refuses), and within the id column's 64 bits
        if not (account.isascii() and account.isdigit()) or int(account) > MAX_ID:
            return None
        row = run(connection, _ACCOUNT_KEY, {"id": int(account)}).one_or_none()
        if row is None or row.jwk is None:
            return None
        if row.status != "valid":
            raise AcmeProblem("unauthorized", f"account is {row.status}", 403)
        return _parsed_key(row.jwk)

    def account_id(self, request: VerifiedRequest) -> int:
        """The id of the account that signed *request* with its "kid" (its key was found valid a moment ago)."""
        if request.kid is None:
            raise AcmeProblem("malformed", "this resource is requested with 'kid', not 'jwk' (RFC 8555 6.2)")
        return int(request.kid.rsplit("/", 1)[1])

    def account_for(self, session: Session, request: VerifiedRequest) -> Account:
        if request.kid is None:
            raise AcmeProblem("malformed", "this resource is requested with 'kid', not 'jwk' (RFC 8555 6.2)")
        account = session.get(Account, int(request.kid.rsplit("/", 1)[1]))
        assert account is not None  # verify_request found its key a moment ago
        return account

    # -- helpers ----------------------------------------------------------------------------------------
    def _account_url(self, account: Account) -> str:
        return f"{self.settings.base}/acct/{account.id}"

    def _order_url(self, order_id: int) -> str:
        return f"{self.settings.base}/order/{order_id}"

    def _event(self, session: Session, action: str, account: Account | int, **details: object) -> None:
        """Record an audit event for an account's request; call it last in the transaction (its insert then
        holds nothing for long: on SQLite every statement before the commit runs under the write lock)."""
        self.audit.append(session, self._prepared(action, account, **details))

    def _prepared(self, action: str, account: Account | int, **details: object) -> PreparedEvent:
        """An audit event for an account's request, prepared before its transaction (:meth:`_append` it in it)."""
        account_id = account if isinstance(account, int) else account.id
        return self.audit.prepare(
            actor=f"acme:account/{account_id}", action=action, subject=f"account {account_id}", outcome="success",
            details=details, dialect=self.db.engine.dialect,
        )  # fmt: skip

    def _append(self, connection: Connection, event: PreparedEvent) -> None:
        self.audit.append(connection, event, sequenced=self.db.audit_sequenced)


@functools.lru_cache(maxsize=4096)
def _parsed_key(jwk: str) -> Any:
    """An account's public key from its stored JWK text; keys are immutable, so parsed ones are kept."""
    return key_from_jwk(json.loads(jwk))


def retry_after(status: str) -> dict[str, str]:
    """RFC 8555 7.1.6 / 8.2: while an object is processing (a validation or a finalization in flight on another
    request), tell the client when to look again."""
    return {"Retry-After": "1"} if status == "processing" else {}
