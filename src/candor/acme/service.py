"""The ACME resources (RFC 8555 7): accounts, orders, authorizations, challenges, finalization, certificates.

Handlers are synchronous and run in a worker thread; each returns (status, JSON body or PEM, headers). The
signer is reached only through the :class:`Finalizer` interface, and validation through :class:`Validator`:
this package never holds a CA key (DESIGN.md, trust boundaries).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select
from sqlalchemy.orm import Session

from candor.acme import ari, eab
from candor.acme.jwk import b64url_decode, jwk_thumbprint, key_authorization, key_from_jwk, public_jwk
from candor.acme.jws import VerifiedRequest, verify_eab, verify_key_change
from candor.acme.problems import URN, AcmeProblem, problem_type_for
from candor.acme.records import (
    account_json,
    authorization_json,
    challenge_json,
    order_authorizations,
    order_json,
    owned,
    rfc3339,
)
from candor.audit import AuditLog
from candor.clock import Clock
from candor.errors import CandorError, ErrorKind
from candor.policy.dated import rules_at
from candor.policy.names import MAX_IDENTIFIERS, Identifier, check_identifiers, normalize_identifier
from candor.ra.limits import Limits, check_new_account, check_new_order, check_validation_attempt
from candor.revocation import RevocationReason, revoke
from candor.storage import Database, orders, repositories
from candor.storage.models import Issuer, SerialRecord
from candor.storage.models_acme import Challenge, ExternalAccountKey, OrderAuthorization
from candor.storage.models_issuance import Account, Authorization, Order
from candor.validation import ValidationResult

Reply = tuple[int, Any, dict[str, str]]
# BR 3.2.2.8: issue within the CAA record's TTL or 8 hours of the check, whichever is greater; Candor takes 8 h.
CAA_RECHECK_AFTER = timedelta(hours=8)
_MAILTO = re.compile(r"^mailto:[^@\s,?]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,63}$")


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


class AcmeService:
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

    def account_key(self, kid: str) -> Any:
        """The key of the valid account whose URL is *kid* (for JWS verification), or None."""
        prefix = f"{self.settings.base}/acct/"
        if not kid.startswith(prefix) or not kid[len(prefix) :].isdigit():
            return None
        with self.db.session() as session:
            account = session.get(Account, int(kid[len(prefix) :]))
            if account is None or account.jwk is None:
                return None
            if account.status != "valid":
                raise AcmeProblem("unauthorized", f"account is {account.status}", 403)
            return key_from_jwk(json.loads(account.jwk))

    def account_for(self, session: Session, request: VerifiedRequest) -> Account:
        if request.kid is None:
            raise AcmeProblem("malformed", "this resource is requested with 'kid', not 'jwk' (RFC 8555 6.2)")
        account = session.get(Account, int(request.kid.rsplit("/", 1)[1]))
        assert account is not None  # verify_request found its key a moment ago
        return account

    # -- accounts (RFC 8555 7.3) ------------------------------------------------------------------------
    def new_account(self, request: VerifiedRequest, *, address: str | None = None) -> Reply:
        if request.jwk is None:
            raise AcmeProblem("malformed", "newAccount is signed with 'jwk', not 'kid' (RFC 8555 7.3)")
        payload = request.payload_json()
        with self.db.session() as session:
            existing = session.scalars(select(Account).where(Account.key_thumbprint == request.thumbprint)).first()
            if existing is not None:
                return 200, account_json(existing, self.settings.base), {"Location": self._account_url(existing)}
            if payload.get("onlyReturnExisting") is True:
                raise AcmeProblem("accountDoesNotExist", "no account exists with this key (RFC 8555 7.3.1)", 400)
            if self.settings.terms_of_service and payload.get("termsOfServiceAgreed") is not True:
                raise AcmeProblem("userActionRequired", "the terms of service must be agreed (RFC 8555 7.3)", 403)
            contact = _contacts(payload.get("contact", []))
            binding = self._external_account(session, request, payload.get("externalAccountBinding"))
            check_new_account(session, address=address, now=self.clock.now(), limits=self.settings.limits)
            account = orders.add_account(
                session, kind="acme", key_thumbprint=request.thumbprint, contact=contact, created_at=self.clock.now()
            )
            account.jwk = json.dumps(dict(request.jwk), sort_keys=True)
            account.created_ip = address
            session.flush()
            if binding is not None:
                binding.status, binding.account_id, binding.bound_at = "bound", account.id, self.clock.now()
                session.flush()
            self._event(
                session, "account.create", account, thumbprint=request.thumbprint,
                external_account=binding.kid if binding is not None else None,
            )  # fmt: skip
            return 201, account_json(account, self.settings.base), {"Location": self._account_url(account)}

    def _external_account(
        self, session: Session, request: VerifiedRequest, binding: object
    ) -> ExternalAccountKey | None:
        """RFC 8555 7.3.4: the external account key this new account binds to, verified, or None."""
        if binding is None:
            if self.settings.external_account_required:
                raise AcmeProblem(
                    "externalAccountRequired", "this server requires an external account binding (RFC 8555 7.3.4)"
                )
            return None
        secret = self.settings.eab_secret
        if secret is None:
            raise AcmeProblem("malformed", "this server has no external accounts to bind to (RFC 8555 7.3.4)")
        if not isinstance(binding, dict):
            raise AcmeProblem("malformed", "externalAccountBinding must be a JWS object (RFC 8555 7.3.4)")
        assert request.jwk is not None
        found: dict[str, ExternalAccountKey] = {}

        def mac_key_for(kid: str) -> bytes | None:
            record = eab.key_by_kid(session, kid)
            if record is None:
                return None
            found[kid] = record
            return eab.mac_key(secret, kid)

        kid = verify_eab(binding, outer_jwk=request.jwk, url=request.url, hmac_key_for=mac_key_for)
        record = found[kid]
        if record.status != "active":
            raise AcmeProblem("unauthorized", f"external account key {kid!r} is {record.status}", 403)
        return record

    def account(self, request: VerifiedRequest, account_id: int) -> Reply:
        with self.db.session() as session:
            account = self.account_for(session, request)
            if account.id != account_id:
                raise AcmeProblem("unauthorized", "an account may only read and change itself", 403)
            if not request.is_post_as_get:
                payload = request.payload_json()
                if "contact" in payload:
                    account.contact = json.dumps(_contacts(payload["contact"]))
                if payload.get("status") == "deactivated":  # RFC 8555 7.3.6
                    account.status = "deactivated"
                elif "status" in payload:
                    raise AcmeProblem("malformed", "an account can only be deactivated (RFC 8555 7.3.6)")
                self._event(session, "account.update", account, changes=sorted(payload))
            return 200, account_json(account, self.settings.base), {}

    def key_change(self, request: VerifiedRequest) -> Reply:
        """RFC 8555 7.3.5: roll the account key; the inner JWS, signed by the new key, names the old one."""
        change = verify_key_change(request.payload_json(), url=request.url)
        new_thumbprint = jwk_thumbprint(public_jwk(change.new_key))
        with self.db.session() as session:
            account = self.account_for(session, request)
            if change.account != request.kid:
                raise AcmeProblem("unauthorized", "the inner 'account' is not the account signing the request", 403)
            if jwk_thumbprint(change.old_jwk) != account.key_thumbprint:
                raise AcmeProblem("unauthorized", "'oldKey' is not this account's current key (RFC 8555 7.3.5)", 403)
            holder = session.scalars(select(Account).where(Account.key_thumbprint == new_thumbprint)).first()
            if holder is not None:
                raise AcmeProblem(
                    "malformed", "the new key already belongs to an account (RFC 8555 7.3.5)", 409,
                    headers={"Location": self._account_url(holder)},
                )  # fmt: skip
            old = account.key_thumbprint
            account.key_thumbprint = new_thumbprint
            account.jwk = json.dumps(public_jwk(change.new_key), sort_keys=True)
            session.flush()
            self._event(session, "account.key_change", account, old_thumbprint=old, new_thumbprint=new_thumbprint)
            return 200, account_json(account, self.settings.base), {}

    def account_orders(self, request: VerifiedRequest, account_id: int) -> Reply:
        """RFC 8555 7.1.2.1: the account's orders that are still pending or ready (processing, valid too)."""
        with self.db.session() as session:
            account = self.account_for(session, request)
            if account.id != account_id:
                raise AcmeProblem("unauthorized", "an account may only list its own orders", 403)
            query = select(Order.id).where(Order.account_id == account.id, Order.status != "invalid").order_by(Order.id)
            urls = [f"{self.settings.base}/order/{order_id}" for order_id in session.scalars(query)]
            return 200, {"orders": urls}, {}

    # -- orders (RFC 8555 7.4) --------------------------------------------------------------------------
    def new_order(self, request: VerifiedRequest) -> Reply:
        payload = request.payload_json()
        if "notBefore" in payload or "notAfter" in payload:
            raise AcmeProblem(
                "malformed", "notBefore and notAfter are set by the CA, never by the request (BR 7.1.2.7)"
            )
        profile = payload.get("profile", next(iter(self.settings.profiles)))
        if profile not in self.settings.profiles:
            raise AcmeProblem("invalidProfile", f"profile {profile!r} is not offered; see the directory's meta")
        identifiers, refused = _identifiers(payload.get("identifiers"))
        replaces = payload.get("replaces")
        if replaces is not None and not isinstance(replaces, str):
            raise AcmeProblem("malformed", "'replaces' is a certificate identifier string (RFC 9773 5)")
        now = self.clock.now()
        with self.db.session() as session:
            issuer = repositories.issuer_by_name(session, self.settings.issuer)
            if issuer is None:
                raise CandorError(ErrorKind.UNAVAILABLE, "the configured ACME issuer does not exist")
            private = issuer.private
        _raise_subproblems(refused + _refused_by_policy(identifiers, now=now, private=private))
        check_identifiers(identifiers, now=now, private=private)
        for identifier in identifiers:
            if identifier.value.startswith("*.") and "dns-01" not in self.settings.challenge_types:
                raise CandorError(
                    ErrorKind.REJECTED_IDENTIFIER,
                    f"{identifier.value}: wildcards are validated only by dns-01, which this server does not offer",
                )
        with self.db.session() as session:
            account = self.account_for(session, request)
            check_new_order(
                session, account_id=account.id, identifiers=identifiers, now=now, limits=self.settings.limits
            )
            issuer = repositories.issuer_by_name(session, self.settings.issuer)
            if issuer is None:
                raise CandorError(ErrorKind.UNAVAILABLE, "the configured ACME issuer does not exist")
            if replaces is not None:
                self._check_replaces(session, account, replaces, identifiers)
            order = orders.add_order(
                session,
                account=account,
                identifiers=[(i.type, i.value) for i in identifiers],
                profile=profile,
                issuer=issuer,
                created_at=now,
                expires_at=now + self.settings.order_lifetime,
                status="pending",
            )
            order.replaces = replaces
            for identifier in identifiers:
                authorization = self._authorization_for(session, account, identifier)
                session.add(OrderAuthorization(order_id=order.id, authorization_id=authorization.id))
            session.flush()
            _refresh_order(session, order)
            self._event(session, "order.create", account, order=order.id, identifiers=[i.value for i in identifiers])
            return 201, order_json(session, order, self.settings.base), {"Location": self._order_url(order)}

    def _check_replaces(
        self, session: Session, account: Account, replaces: str, identifiers: tuple[Identifier, ...]
    ) -> None:
        """RFC 9773 5: the replaced certificate was ordered by this account, shares a name with the new order,
        and no other live order already replaces it."""
        found = self._certificate_by_cert_id(session, ari.parse_cert_id(replaces))
        issuance = orders.issuance_for_serial(session, found[0].id) if found is not None else None
        if found is None or issuance is None or issuance.account_id != account.id:
            raise AcmeProblem("malformed", "'replaces' does not name a certificate this account ordered", 400)
        order = session.get(Order, issuance.order_id)
        assert order is not None
        old = {value for _, value in orders.decode_identifiers(order.identifiers)}
        if not old & {i.value for i in identifiers}:
            raise AcmeProblem("malformed", "the order shares no identifier with the certificate it replaces", 400)
        live = select(Order.id).where(Order.replaces == replaces, Order.status != "invalid")
        if session.scalars(live).first() is not None:
            raise AcmeProblem("alreadyReplaced", "another order already replaces this certificate (RFC 9773 5)", 409)

    def _certificate_by_cert_id(
        self, session: Session, cert_id: ari.CertId
    ) -> tuple[SerialRecord, x509.Certificate] | None:
        for issuer in repositories.list_issuers(session):
            if _key_identifier(issuer.certificate_der) != cert_id.key_identifier:
                continue
            serial = repositories.serial_by_value(session, issuer, cert_id.serial)
            der = orders.find_certificate_der(session, serial.id, "certificate") if serial is not None else None
            if serial is not None and der is not None:
                return serial, x509.load_der_x509_certificate(der)
        return None

    def renewal_info(self, cert_id: str) -> Reply:
        """RFC 9773 4: the suggested renewal window of a certificate this server issued (GET, no JWS)."""
        parsed = ari.parse_cert_id(cert_id)
        now = self.clock.now()
        with self.db.session() as session:
            found = self._certificate_by_cert_id(session, parsed)
            if found is None:
                raise AcmeProblem("malformed", "no certificate with this identifier was issued here", 404)
            serial, certificate = found
            start, end = ari.suggested_window(
                certificate.not_valid_before_utc, certificate.not_valid_after_utc,
                revoked=serial.status == "revoked", now=now,
            )  # fmt: skip
        body = {"suggestedWindow": {"start": rfc3339(start), "end": rfc3339(end)}}
        return 200, body, {"Retry-After": str(ari.RETRY_AFTER_SECONDS)}

    def order(self, request: VerifiedRequest, order_id: int) -> Reply:
        with self.db.session() as session:
            order = owned(session, Order, order_id, self.account_for(session, request))
            body = order_json(session, order, self.settings.base)
            return 200, body, _retry_after(body["status"])

    def finalize(self, request: VerifiedRequest, order_id: int) -> Reply:
        payload = request.payload_json()
        csr_b64 = payload.get("csr")
        if not isinstance(csr_b64, str):
            raise AcmeProblem("malformed", "finalize needs a 'csr' (RFC 8555 7.4)")
        csr = b64url_decode(csr_b64, "csr")
        with self.db.session() as session:
            order = owned(session, Order, order_id, self.account_for(session, request))
            status = order.status
        if status != "ready":
            raise AcmeProblem("orderNotReady", f"the order is {status}, not ready (RFC 8555 7.4)", 403)
        self._recheck_caa(order_id)
        try:
            self.finalizer.finalize(order_id, csr)
        except CandorError as exc:
            if exc.kind is ErrorKind.CONFLICT:  # another finalization got there first
                raise AcmeProblem("orderNotReady", exc.message, 403) from None
            raise
        with self.db.session() as session:
            order = session.get(Order, order_id)
            assert order is not None
            return 200, order_json(session, order, self.settings.base), {"Location": self._order_url(order)}

    def _recheck_caa(self, order_id: int) -> None:
        """BR 3.2.2.8: CAA is checked again for every name whose last check is older than 8 hours; a refusal
        (or a failed lookup) makes the order invalid (RFC 8555 7.1.6) and nothing is signed."""
        now = self.clock.now()
        with self.db.session() as session:
            order = session.get(Order, order_id)
            assert order is not None
            account = session.get(Account, order.account_id)
            assert account is not None
            account_uri = self._account_url(account)
            stale = [
                (a.id, normalize_identifier(a.identifier_type, ("*." if a.wildcard else "") + a.identifier_value),
                 a.method or "")
                for a in order_authorizations(session, order)
                if a.identifier_type == "dns"
                and (a.caa_checked_at is None or a.caa_checked_at + self.settings.caa_recheck_after <= now)
            ]  # fmt: skip
        for authorization_id, identifier, method in stale:
            refusal = self.validator.recheck_caa(identifier, method=method, account_uri=account_uri)
            with self.db.session() as session:
                if refusal is None:
                    authorization = session.get(Authorization, authorization_id)
                    assert authorization is not None
                    authorization.caa_checked_at = now
                    continue
                problem_type, detail = refusal
                order = session.get(Order, order_id)
                assert order is not None
                kind = ErrorKind.UNAVAILABLE if problem_type == "dns" else ErrorKind.POLICY
                order.status = "invalid"
                order.error = json.dumps(
                    {"kind": kind.value, "type": problem_type, "status": 403, "detail": f"CAA recheck: {detail}"}
                )
                self.audit.record(
                    session, actor=account_uri, action="caa.recheck", subject=identifier.value,
                    outcome="failure", details={"order": order_id, "problem": problem_type, "detail": detail},
                )  # fmt: skip
            raise AcmeProblem(problem_type, f"CAA recheck at finalization: {detail}", 403)

    def certificate(self, request: VerifiedRequest, order_id: int) -> Reply:
        with self.db.session() as session:
            order = owned(session, Order, order_id, self.account_for(session, request))
            issuance = orders.issuance_for_order(session, order.id)
            if order.status != "valid" or issuance is None:
                raise AcmeProblem("malformed", "no certificate for this order yet", 404)
            leaf = orders.certificate_der(session, issuance.serial_id, "certificate")
            chain = [leaf]
            issuer: Issuer | None = issuance.serial.issuer
            while issuer is not None and issuer.kind != "root":
                chain.append(issuer.certificate_der)
                issuer = issuer.parent
        pem = b"".join(_pem(der) for der in chain)
        return 200, pem, {"Content-Type": "application/pem-certificate-chain"}

    # -- revocation (RFC 8555 7.6) ----------------------------------------------------------------------
    def revoke_certificate(self, request: VerifiedRequest) -> Reply:
        """Revoke a certificate, signed either by the account that ordered it (kid) or by its own key (jwk)."""
        payload = request.payload_json()
        der = b64url_decode(payload.get("certificate"), "certificate")
        try:
            certificate = x509.load_der_x509_certificate(der)
        except ValueError:
            raise AcmeProblem("malformed", "'certificate' is not a DER X.509 certificate (RFC 8555 7.6)") from None
        reason = parse_reason_code(payload.get("reason", 0))
        with self.db.session() as session:
            stored = orders.find_certificate_by_der(session, der)
            if stored is None:
                raise AcmeProblem("malformed", "this server did not issue that certificate", 404)
            serial, issuer = stored
            if request.kid is not None:
                account = self.account_for(session, request)
                issuance = orders.issuance_for_serial(session, serial.id)
                ordered = issuance is not None and issuance.account_id == account.id
                if not ordered and not self._holds_authorizations(session, account, certificate):
                    raise AcmeProblem(
                        "unauthorized",
                        "only the account that ordered a certificate, or one holding valid authorizations for "
                        "every identifier in it, may revoke it (RFC 8555 7.6)",
                        403,
                    )
                actor = f"acme:account/{account.id}"
            else:
                spki = certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
                if request.key is None or _spki(request.key) != spki:
                    raise AcmeProblem("unauthorized", "the request is not signed by the certificate's key", 403)
                actor = "acme:certificate-key"
            if serial.status == "revoked" and reason is not RevocationReason.KEY_COMPROMISE:
                raise AcmeProblem("alreadyRevoked", "the certificate is already revoked (RFC 8555 7.6)", 400)
            revoke(
                session, audit=self.audit, actor=actor, issuer=issuer,
                serial=certificate.serial_number, reason=reason, now=self.clock.now(),
            )  # fmt: skip
        return 200, b"", {}

    def _holds_authorizations(self, session: Session, account: Account, certificate: x509.Certificate) -> bool:
        """RFC 8555 7.6, the third case: *account* holds a valid, unexpired authorization for every identifier
        in the certificate (the exact name, or the wildcard authorization for a wildcard name)."""
        try:
            san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return False
        wanted = [(False, "dns", n.lower()) if not n.startswith("*.") else (True, "dns", n[2:].lower())
                  for n in san.get_values_for_type(x509.DNSName)]  # fmt: skip
        wanted += [(False, "ip", str(ip)) for ip in san.get_values_for_type(x509.IPAddress)]
        if not wanted:
            return False
        now = self.clock.now()
        held = {
            (a.wildcard, a.identifier_type, a.identifier_value)
            for a in orders.candidate_authorizations(session, account_id=account.id, values=[w[2] for w in wanted])
            if a.status == "valid" and a.expires_at > now
        }
        return all(item in held for item in wanted)

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
                for order in _orders_with(session, authorization):
                    _refresh_order(session, order)
            body = authorization_json(session, authorization, self.settings.base)
            processing = any(c["status"] == "processing" for c in body["challenges"])
            return 200, body, _retry_after("processing" if processing else body["status"])

    def challenge(self, request: VerifiedRequest, challenge_id: int) -> Reply:
        with self.db.session() as session:
            account = self.account_for(session, request)
            challenge = owned(session, Challenge, challenge_id, account)
            authorization = session.get(Authorization, challenge.authorization_id)
            assert authorization is not None
            start = not request.is_post_as_get and challenge.status == "pending" and authorization.status == "pending"
            if start:
                if authorization.expires_at <= self.clock.now():
                    raise AcmeProblem("malformed", "the authorization has expired", 403)
                check_validation_attempt(
                    session, name=authorization.identifier_value, now=self.clock.now(), limits=self.settings.limits
                )
                challenge.status = "processing"
            identifier = normalize_identifier(authorization.identifier_type, authorization.identifier_value)
            jwk = _jwk_of(account)
            account_url = self._account_url(account)
            token, challenge_type = challenge.token, challenge.type
        if start:
            result = self.validator.validate(
                challenge_type, identifier, token, key_authorization(token, jwk), account_uri=account_url
            )
            self._record_validation(challenge_id, result, jwk_thumbprint(jwk))
        with self.db.session() as session:
            challenge = session.get(Challenge, challenge_id)
            assert challenge is not None
            # RFC 8555 7.1: the "index" link on every resource, and for a challenge its authorization ("up").
            base = self.settings.base
            links = f'<{base}/authz/{challenge.authorization_id}>;rel="up", <{base}/directory>;rel="index"'
            return 200, challenge_json(challenge, base), {"Link": links, **_retry_after(challenge.status)}

    def _record_validation(self, challenge_id: int, result: ValidationResult, thumbprint: str) -> None:
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
            for order in _orders_with(session, authorization):
                _refresh_order(session, order)
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

    def _authorization_for(self, session: Session, account: Account, identifier: Identifier) -> Authorization:
        """A valid authorization of this account for exactly this identifier, still inside the reuse period,
        or a new pending one with its challenges (RFC 8555 7.4; BR 4.2.1)."""
        now = self.clock.now()
        wildcard = identifier.value.startswith("*.")
        value = identifier.value.removeprefix("*.")
        reuse = timedelta(days=rules_at(now).dcv_reuse_days)
        for candidate in orders.candidate_authorizations(session, account_id=account.id, values=[value]):
            fresh = candidate.validated_at is not None and candidate.validated_at + reuse > now
            if candidate.wildcard == wildcard and candidate.expires_at > now and fresh and candidate.method:
                return candidate
        authorization = orders.add_authorization(
            session,
            account=account,
            identifier=(identifier.type, value),
            wildcard=wildcard,
            status="pending",
            expires_at=now + self.settings.authorization_lifetime,
            created_at=now,
        )
        for challenge_type in self._challenge_types(identifier):
            session.add(
                Challenge(
                    authorization_id=authorization.id,
                    type=challenge_type,
                    token=base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii"),
                    status="pending",
                )
            )
        session.flush()
        return authorization

    def _challenge_types(self, identifier: Identifier) -> tuple[str, ...]:
        """Which challenges prove this identifier: a wildcard only by dns-01 (RFC 8555 7.1.3; BR 3.2.2.4.7 is the
        only method for a wildcard here), an IP address never by dns-01 (RFC 8738 7)."""
        offered = self.settings.challenge_types
        if identifier.type == "ip":
            return tuple(t for t in offered if t != "dns-01")
        if identifier.value.startswith("*."):
            return tuple(t for t in offered if t == "dns-01")
        return offered

    # -- helpers ----------------------------------------------------------------------------------------
    def _account_url(self, account: Account) -> str:
        return f"{self.settings.base}/acct/{account.id}"

    def _order_url(self, order: Order) -> str:
        return f"{self.settings.base}/order/{order.id}"

    def _event(self, session: Session, action: str, account: Account, **details: object) -> None:
        self.audit.record(
            session, actor=f"acme:account/{account.id}", action=action, subject=f"account {account.id}",
            outcome="success", details=details,
        )  # fmt: skip


def _retry_after(status: str) -> dict[str, str]:
    """RFC 8555 7.1.6 / 8.2: while an object is processing (a validation or a finalization in flight on another
    request), tell the client when to look again."""
    return {"Retry-After": "1"} if status == "processing" else {}


def parse_reason_code(value: object) -> RevocationReason:
    """RFC 8555 7.6: an RFC 5280 CRLReason code; BR 7.2.2 narrows which a subscriber may give."""
    allowed = {
        RevocationReason.UNSPECIFIED,
        RevocationReason.KEY_COMPROMISE,
        RevocationReason.SUPERSEDED,
        RevocationReason.CESSATION_OF_OPERATION,
        RevocationReason.AFFILIATION_CHANGED,
    }
    if not isinstance(value, int) or isinstance(value, bool) or value not in {int(r) for r in allowed}:
        raise AcmeProblem("badRevocationReason", "reason must be 0, 1, 3, 4 or 5 (BR 7.2.2; RFC 8555 7.6)", 400)
    return RevocationReason(value)


def _spki(key: Any) -> bytes:
    return bytes(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))


def _jwk_of(account: Account) -> dict[str, Any]:
    return dict(json.loads(account.jwk or "{}"))


def _key_identifier(certificate_der: bytes) -> bytes | None:
    """The subjectKeyIdentifier of an issuer certificate (what its certificates carry as AKI keyIdentifier)."""
    try:
        extension = x509.load_der_x509_certificate(certificate_der).extensions
        return extension.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except (ValueError, x509.ExtensionNotFound):
        return None


def _pem(der: bytes) -> bytes:
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"-----BEGIN CERTIFICATE-----\n" + b"\n".join(lines) + b"\n-----END CERTIFICATE-----\n"


def _contacts(value: object) -> list[str]:
    """RFC 8555 7.3: contact URIs; Candor accepts mailto: only, one address each."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AcmeProblem("malformed", "'contact' is a list of URI strings (RFC 8555 7.1.2)")
    for uri in value:
        if not uri.startswith("mailto:"):
            raise AcmeProblem("unsupportedContact", f"only mailto: contacts are supported, not {uri[:60]!r}")
        if not _MAILTO.match(uri):
            raise AcmeProblem("invalidContact", f"{uri[:80]!r} is not a single mailto: address (RFC 8555 7.3)")
    if len(value) > 10:
        raise AcmeProblem("malformed", "at most 10 contacts")
    return list(value)


def _identifiers(value: object) -> tuple[tuple[Identifier, ...], list[dict[str, object]]]:
    """The requested identifiers in normal form, and a subproblem for each that has none."""
    if not isinstance(value, list) or not value:
        raise AcmeProblem("malformed", "'identifiers' is a non-empty list (RFC 8555 7.4)")
    if len(value) > 4 * MAX_IDENTIFIERS:
        raise AcmeProblem("rejectedIdentifier", f"at most {MAX_IDENTIFIERS} identifiers in an order")
    found: list[Identifier] = []
    refused: list[dict[str, object]] = []
    for item in value:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("type"), str)
            or not isinstance(item.get("value"), str)
        ):
            raise AcmeProblem("malformed", "each identifier is an object with a string 'type' and 'value'")
        if item["type"] not in ("dns", "ip"):
            raise AcmeProblem("unsupportedIdentifier", f"identifier type {item['type'][:20]!r} is not supported")
        try:
            found.append(normalize_identifier(item["type"], item["value"]))
        except CandorError as exc:
            refused.append(_subproblem(exc, item["type"], item["value"][:255]))
    return tuple(sorted(set(found), key=lambda i: (i.type, i.value))), refused


def _subproblem(error: CandorError, identifier_type: str, value: str) -> dict[str, object]:
    acme_type, status = problem_type_for(error.kind)
    return {
        "type": URN + acme_type,
        "detail": error.message,
        "status": status,
        "identifier": {"type": identifier_type, "value": value},
    }


def _raise_subproblems(refused: list[dict[str, object]]) -> None:
    """RFC 8555 6.7.1: one refused identifier is the error itself; several are subproblems of one error."""
    if len(refused) == 1:
        only = refused[0]
        raise AcmeProblem(str(only["type"]).removeprefix(URN), str(only["detail"]), int(str(only["status"])))
    if refused:
        raise AcmeProblem(
            "rejectedIdentifier",
            f"{len(refused)} identifiers cannot be certified; see the subproblems",
            400,
            subproblems=refused,
        )


def _refused_by_policy(identifiers: tuple[Identifier, ...], *, now: datetime, private: bool) -> list[dict[str, object]]:
    """Each identifier on its own against the name policy, so that every refused one is named."""
    refused = []
    for identifier in identifiers:
        try:
            check_identifiers([identifier], now=now, private=private)
        except CandorError as exc:
            refused.append(_subproblem(exc, identifier.type, identifier.value))
    return refused


def _orders_with(session: Session, authorization: Authorization) -> list[Order]:
    query = (
        select(Order)
        .join(OrderAuthorization, OrderAuthorization.order_id == Order.id)
        .where(OrderAuthorization.authorization_id == authorization.id)
    )
    return list(session.scalars(query))


def _refresh_order(session: Session, order: Order) -> None:
    """RFC 8555 7.1.6: pending -> ready when every authorization is valid; invalid when one is not."""
    if order.status != "pending":
        return
    statuses = {a.status for a in order_authorizations(session, order)}
    if statuses & {"invalid", "deactivated", "expired", "revoked"}:
        order.status = "invalid"
    elif statuses == {"valid"}:
        order.status = "ready"
    session.flush()


__all__ = ["AcmeService", "AcmeSettings", "Finalizer", "Reply", "Validator"]
