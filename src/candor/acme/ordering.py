"""Orders (RFC 8555 7.4): newOrder with its identifiers, profiles and `replaces`, finalization (CAA rechecked),
and the certificate download.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from candor.acme import ari
from candor.acme.core import Reply, ServiceCore, retry_after
from candor.acme.jwk import b64url_decode
from candor.acme.jws import VerifiedRequest
from candor.acme.problems import URN, AcmeProblem, problem_type_for
from candor.acme.records import order_json, require_owner
from candor.acme.renewal import certificate_by_cert_id
from candor.errors import CandorError, ErrorKind
from candor.policy.dated import rules_at
from candor.policy.names import MAX_IDENTIFIERS, Identifier, check_identifiers, normalize_identifier
from candor.ra.limits import check_new_order
from candor.storage import acme_sql, acme_views, orders, repositories
from candor.storage.acme_views import AuthorizationView, OrderView
from candor.storage.models_issuance import Authorization, Order


class Ordering(ServiceCore):
    """newOrder, the order, finalize, and the certificate (RFC 8555 7.4)."""

    # -- orders (RFC 8555 7.4) --------------------------------------------------------------------------
    def new_order(self, request: VerifiedRequest) -> Reply:
        payload = request.payload_json()
        if "notBefore" in payload or "notAfter" in payload:
            raise AcmeProblem(
                "malformed", "notBefore and notAfter are set by the CA, never by the request (BR 7.1.2.7)"
            )
        profile = payload.get("profile", next(iter(self.settings.profiles)))
        if not isinstance(profile, str):
            raise AcmeProblem("malformed", "'profile' is a string naming one of the directory's meta.profiles")
        if profile not in self.settings.profiles:
            raise AcmeProblem("invalidProfile", f"profile {profile!r} is not offered; see the directory's meta")
        identifiers, refused = _identifiers(payload.get("identifiers"))
        replaces = payload.get("replaces")
        if replaces is not None and not isinstance(replaces, str):
            raise AcmeProblem("malformed", "'replaces' is a certificate identifier string (RFC 9773 5)")
        now = self.clock.now()
        private = self._issuer_is_private()
        _raise_subproblems(refused + _refused_by_policy(identifiers, now=now, private=private))
        check_identifiers(identifiers, now=now, private=private)
        for identifier in identifiers:
            if identifier.value.startswith("*.") and "dns-01" not in self.settings.challenge_types:
                raise CandorError(
                    ErrorKind.REJECTED_IDENTIFIER,
                    f"{identifier.value}: wildcards are validated only by dns-01, which this server does not offer",
                )
        account_id = self.account_id(request)
        with self.db.connection() as connection:
            check_new_order(
                connection, account_id=account_id, identifiers=identifiers, now=now, limits=self.settings.limits
            )
            if replaces is not None:
                with Session(bind=connection) as session:  # in the connection's transaction (ORM reads only)
                    self._check_replaces(session, account_id, replaces, identifiers)
            authorizations = [self._authorization_for(connection, account_id, i, now=now) for i in identifiers]
            status = "ready" if all(reused for _, reused in authorizations) else "pending"  # RFC 8555 7.1.6
            expires_at = now + self.settings.order_lifetime
            order_id = acme_sql.insert_order(
                connection, account_id=account_id, identifiers=[(i.type, i.value) for i in identifiers],
                profile=profile, issuer_id=self._issuer()[0], status=status, created_at=now, expires_at=expires_at,
                replaces=replaces,
            )  # fmt: skip
            acme_sql.link_authorizations(connection, order_id, [a for a, _ in authorizations])
            order = OrderView(
                order_id, account_id, status, orders.encode_identifiers((i.type, i.value) for i in identifiers),
                profile, expires_at, replaces, None,
            )  # fmt: skip
            event = self._prepared(
                "order.create", account_id, order=order_id, identifiers=[i.value for i in identifiers]
            )
            self._append(connection, event)
        body = order_json(order, [a for a, _ in authorizations], self.settings.base, issued=False)
        return 201, body, {"Location": self._order_url(order_id)}

    def _check_replaces(
        self, session: Session, account_id: int, replaces: str, identifiers: tuple[Identifier, ...]
    ) -> None:
        """RFC 9773 5: the replaced certificate was ordered by this account, shares a name with the new order,
        and no other live order already replaces it."""
        found = certificate_by_cert_id(session, ari.parse_cert_id(replaces))
        issuance = orders.issuance_for_serial(session, found[0].id) if found is not None else None
        if found is None or issuance is None or issuance.account_id != account_id:
            raise AcmeProblem("malformed", "'replaces' does not name a certificate this account ordered", 400)
        order = session.get(Order, issuance.order_id)
        assert order is not None
        old = {value for _, value in orders.decode_identifiers(order.identifiers)}
        if not old & {i.value for i in identifiers}:
            raise AcmeProblem("malformed", "the order shares no identifier with the certificate it replaces", 400)
        live = select(Order.id).where(Order.replaces == replaces, Order.status != "invalid")
        if session.scalars(live).first() is not None:
            raise AcmeProblem("alreadyReplaced", "another order already replaces this certificate (RFC 9773 5)", 409)

    def order(self, request: VerifiedRequest, order_id: int) -> Reply:
        body = self._order_body(self.account_id(request), order_id)
        return 200, body, retry_after(body["status"])

    def _order_body(self, account_id: int, order_id: int) -> dict[str, Any]:
        """The order as RFC 8555 7.1.3 shows it to its owner (404 to anyone else)."""
        with self.db.reader() as connection:
            order = acme_views.order_view(connection, order_id)
            require_owner(order, account_id, "order")
            assert order is not None
            authorizations = [a.id for a in acme_views.order_authorizations(connection, order_id)]
            issued = order.status == "valid" and acme_views.has_issuance(connection, order_id)
        return order_json(order, authorizations, self.settings.base, issued=issued)

    def finalize(self, request: VerifiedRequest, order_id: int) -> Reply:
        payload = request.payload_json()
        csr_b64 = payload.get("csr")
        if not isinstance(csr_b64, str):
            raise AcmeProblem("malformed", "finalize needs a 'csr' (RFC 8555 7.4)")
        csr = b64url_decode(csr_b64, "csr")
        account_id = self.account_id(request)
        with self.db.reader() as connection:
            order = acme_views.order_view(connection, order_id)
            require_owner(order, account_id, "order")
            assert order is not None
            if order.status != "ready":
                raise AcmeProblem("orderNotReady", f"the order is {order.status}, not ready (RFC 8555 7.4)", 403)
            authorizations = acme_views.order_authorizations(connection, order_id)
        stale = self._caa_stale(authorizations)
        if stale:
            self._recheck_caa(order_id, stale, f"{self.settings.base}/acct/{account_id}")
        try:
            self.finalizer.finalize(order_id, csr)
        except CandorError as exc:
            if exc.kind is ErrorKind.CONFLICT:  # another finalization got there first
                raise AcmeProblem("orderNotReady", exc.message, 403) from None
            raise
        # The signer returns only once the certificate is stored and, in the same transaction, the order valid.
        issued = dataclasses.replace(order, status="valid")
        body = order_json(issued, [a.id for a in authorizations], self.settings.base, issued=True)
        return 200, body, {"Location": self._order_url(order_id)}

    def _issuer_is_private(self) -> bool:
        """Whether the ACME issuer is private (it may certify internal names)."""
        return self._issuer()[1]

    def _issuer(self) -> tuple[int, bool]:
        """The ACME issuer's id and privateness: fixed at the ceremony, so read once."""
        if self._issuer_row is None:
            with self.db.session() as session:
                issuer = repositories.issuer_by_name(session, self.settings.issuer)
                if issuer is None:
                    raise CandorError(ErrorKind.UNAVAILABLE, "the configured ACME issuer does not exist")
                self._issuer_row = (issuer.id, issuer.private)
        return self._issuer_row

    _issuer_row: tuple[int, bool] | None = None

    def _caa_stale(self, authorizations: list[AuthorizationView]) -> list[tuple[int, Identifier, str]]:
        """The dns authorizations of an order whose CAA check is 8 hours old or more (BR 3.2.2.8)."""
        now = self.clock.now()
        return [
            (a.id, normalize_identifier(a.identifier_type, ("*." if a.wildcard else "") + a.identifier_value),
             a.method or "")
            for a in authorizations
            if a.identifier_type == "dns"
            and (a.caa_checked_at is None or a.caa_checked_at + self.settings.caa_recheck_after <= now)
        ]  # fmt: skip

    def _recheck_caa(self, order_id: int, stale: list[tuple[int, Identifier, str]], account_uri: str) -> None:
        """BR 3.2.2.8: CAA is checked again for every name whose last check is older than 8 hours; a refusal
        (or a failed lookup) makes the order invalid (RFC 8555 7.1.6) and nothing is signed."""
        now = self.clock.now()
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
        account_id = self.account_id(request)
        with self.db.reader() as connection:
            order = acme_views.order_view(connection, order_id)
            require_owner(order, account_id, "order")
            assert order is not None
            found = acme_views.certificate_of_order(connection, order_id) if order.status == "valid" else None
            if found is None:
                raise AcmeProblem("malformed", "no certificate for this order yet", 404)
            leaf, issuer_id = found
            chain = self._chains.get(issuer_id)
            if chain is None:  # issuers' certificates never change: read once per process
                chain = self._chains.setdefault(issuer_id, acme_views.chain_below_root(connection, issuer_id))
        pem = b"".join(_pem(der) for der in (leaf, *chain))
        return 200, pem, {"Content-Type": "application/pem-certificate-chain"}

    def _authorization_for(
        self, connection: Connection, account_id: int, identifier: Identifier, *, now: datetime
    ) -> tuple[int, bool]:
        """A valid authorization of this account for exactly this identifier, still inside the reuse period,
        or a new pending one with its challenges (RFC 8555 7.4; BR 4.2.1): its id, and whether it was reused."""
        wildcard = identifier.value.startswith("*.")
        value = identifier.value.removeprefix("*.")
        reuse = timedelta(days=rules_at(now).dcv_reuse_days)
        for candidate in acme_sql.reusable_authorizations(connection, account_id=account_id, values=[value]):
            fresh = candidate.validated_at is not None and candidate.validated_at + reuse > now
            if candidate.wildcard == wildcard and candidate.expires_at > now and fresh and candidate.method:
                return candidate.id, True
        authorization_id = acme_sql.insert_authorization(
            connection, account_id=account_id, identifier=(identifier.type, value), wildcard=wildcard,
            created_at=now, expires_at=now + self.settings.authorization_lifetime,
        )  # fmt: skip
        tokens = [(t, base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii"))
                  for t in self._challenge_types(identifier)]  # fmt: skip
        acme_sql.insert_challenges(connection, authorization_id, tokens)
        return authorization_id, False

    def _challenge_types(self, identifier: Identifier) -> tuple[str, ...]:
        """Which challenges prove this identifier: a wildcard only by dns-01 (RFC 8555 7.1.3; BR 3.2.2.4.7 is the
        only method for a wildcard here), an IP address never by dns-01 (RFC 8738 7)."""
        offered = self.settings.challenge_types
        if identifier.type == "ip":
            return tuple(t for t in offered if t != "dns-01")
        if identifier.value.startswith("*."):
            return tuple(t for t in offered if t == "dns-01")
        return offered


def _pem(der: bytes) -> bytes:
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"-----BEGIN CERTIFICATE-----\n" + b"\n".join(lines) + b"\n-----END CERTIFICATE-----\n"


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
