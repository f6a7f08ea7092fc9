"""Accounts (RFC 8555 7.3): creation with external account binding, update, deactivation, key rollover, orders list."""

from __future__ import annotations

import json
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from candor.acme import eab
from candor.acme.core import Reply, ServiceCore
from candor.acme.jwk import jwk_thumbprint, public_jwk
from candor.acme.jws import VerifiedRequest, verify_eab, verify_key_change
from candor.acme.problems import AcmeProblem
from candor.acme.records import (
    account_json,
)
from candor.ra.limits import check_new_account
from candor.storage import orders
from candor.storage.models_acme import ExternalAccountKey
from candor.storage.models_issuance import Account, Order

_MAILTO = re.compile(r"^mailto:[^@\s,?]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,63}$")


class Accounts(ServiceCore):
    """newAccount, account update and deactivation, keyChange, and the orders list (RFC 8555 7.3)."""

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
