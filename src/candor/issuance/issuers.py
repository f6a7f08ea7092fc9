"""Which CA signs, and whether it may: the issuer checks the signer makes for every order."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.x509.oid import ExtensionOID
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from candor.errors import CandorError, ErrorKind
from candor.keys import KeyStores
from candor.policy.algorithms import CAPrivateKey, KeyAlgorithm
from candor.profiles import POLICY_DV, POLICY_EV, POLICY_IV, POLICY_OV, IssuerInfo
from candor.storage.issuance_sql import OrderFacts, issuer_state
from candor.storage.models import Issuer

ANY_POLICY = x509.ObjectIdentifier("2.5.29.32.0")
PROFILE_POLICY = {"dv": POLICY_DV, "ov": POLICY_OV, "iv": POLICY_IV, "ev": POLICY_EV}


@dataclass(frozen=True)
class KeyReference:
    store: str
    handle: str
    algorithm: KeyAlgorithm


@dataclass(frozen=True)
class IssuerContext:
    """What the signer needs of an issuer, as plain values: cached per process, so it holds no ORM object
    (a rolled-back session would expire one under our feet)."""

    id: int
    name: str
    private: bool
    crl_shards: int
    key_reference: KeyReference
    certificate: x509.Certificate
    subject_der: bytes  # the certificate's subject, as every certificate it signs names its issuer
    chain: tuple[x509.Certificate, ...]  # the issuing CA and any intermediates above it, root excluded
    algorithm: KeyAlgorithm
    info: IssuerInfo
    policies: frozenset[x509.ObjectIdentifier]  # the certificate's certificatePolicies (BR 7.1.2.10.5)
    resolver: IssuerResolver

    def key(self) -> CAPrivateKey:
        return self.resolver.key_for(self)


class IssuerResolver:
    def __init__(self, stores: KeyStores, *, base_url: str) -> None:
        self._stores = stores
        self._base_url = base_url
        self._keys: dict[int, CAPrivateKey] = {}
        self._contexts: dict[int, IssuerContext] = {}
        self._lock = threading.Lock()

    def key_for(self, issuer: IssuerContext) -> CAPrivateKey:
        with self._lock:
            key = self._keys.get(issuer.id)
            if key is None:
                reference = issuer.key_reference
                key = self._stores.get(reference.store).load(reference.handle, reference.algorithm)
                self._keys[issuer.id] = key
            return key

    def by_id(self, session: Session | Connection, issuer_id: int) -> IssuerContext:
        """The issuer's certificates and key reference, parsed once per process (they never change)."""
        with self._lock:
            cached = self._contexts.get(issuer_id)
        if cached is not None:
            return cached
        if isinstance(session, Connection):  # the first time only: an ORM session in the caller's transaction
            with Session(bind=session) as own:
                return self.by_id(own, issuer_id)
        issuer = session.get(Issuer, issuer_id)
        if issuer is None:
            raise CandorError(ErrorKind.NOT_FOUND, f"issuer {issuer_id} does not exist")
        context = self._context(issuer)
        with self._lock:
            return self._contexts.setdefault(issuer_id, context)

    def _context(self, issuer: Issuer) -> IssuerContext:
        certificate = x509.load_der_x509_certificate(issuer.certificate_der)
        chain = [certificate]
        parent = issuer.parent
        while parent is not None and parent.kind != "root":
            chain.append(x509.load_der_x509_certificate(parent.certificate_der))
            parent = parent.parent
        public_key = certificate.public_key()
        return IssuerContext(
            id=issuer.id,
            name=issuer.name,
            private=issuer.private,
            crl_shards=issuer.crl_shards,
            key_reference=KeyReference(issuer.key.store, issuer.key.handle, KeyAlgorithm(issuer.key.algorithm)),
            certificate=certificate,
            subject_der=certificate.subject.public_bytes(),
            chain=tuple(chain),
            algorithm=KeyAlgorithm(issuer.key.algorithm),
            info=IssuerInfo(
                name=certificate.subject,
                public_key=public_key,  # type: ignore[arg-type]
                not_after=certificate.not_valid_after_utc,
                certificate_url=f"{self._base_url}/issuers/{issuer.name}.der",
                crl_url=f"{self._base_url}/crl/{issuer.name}.crl",
            ),
            policies=frozenset(_policies(certificate)),
            resolver=self,
        )

    def for_order(self, connection: Connection, order: OrderFacts, *, now: datetime, with_ct: bool) -> IssuerContext:
        """The order's issuer, refused unless it may issue this profile now (its status read fresh)."""
        context = self.by_id(connection, order.issuer_id)
        issuer = issuer_state(connection, order.issuer_id)
        assert issuer is not None
        if issuer.kind != "tls" or issuer.status != "active":
            raise CandorError(ErrorKind.POLICY, f"issuer {issuer.name!r} is not an active TLS issuing CA")
        if not issuer.not_before <= now < issuer.not_after:
            raise CandorError(ErrorKind.POLICY, f"issuer {issuer.name!r} is outside its validity period")
        wanted = PROFILE_POLICY.get(order.profile)
        if wanted is None or not (wanted in context.policies or ANY_POLICY in context.policies):
            raise CandorError(
                ErrorKind.POLICY,
                f"BR 7.1.2.10.5: issuer {issuer.name!r} may not issue the {order.profile!r} profile",
            )
        if not with_ct and not context.private:
            raise CandorError(
                ErrorKind.POLICY, f"issuer {issuer.name!r} is publicly trusted: it issues only with CT logs"
            )
        return context


def _policies(certificate: x509.Certificate) -> set[x509.ObjectIdentifier]:
    try:
        extension = certificate.extensions.get_extension_for_oid(ExtensionOID.CERTIFICATE_POLICIES)
    except x509.ExtensionNotFound:
        return set()
    return {p.policy_identifier for p in extension.value}  # type: ignore[attr-defined]
