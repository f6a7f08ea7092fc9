"""Who signs an issuer's OCSP responses (RFC 6960 2.6, 4.2.2.2; BR 7.1.2.8): its active delegated responder, or the
issuer itself when ``[ocsp] sign_with_issuer`` names it. The pre-signer and the on-demand signer both ask here, so a
response signed on demand has the signer its pre-signed twin has. Signer side: this loads keys from the key stores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from sqlalchemy import select

from candor.keys import KeyAlgorithm, KeyStores
from candor.revocation.ocsp.responses import ResponseBuilder
from candor.revocation.ocsp.settings import OcspSettings
from candor.storage import Database
from candor.storage.models import Issuer, KeyRecord, OcspResponder


@dataclass
class Identity:
    """One issuer's signing identity: its builder and the responder row it uses (None: the CA key)."""

    issuer_id: int
    issuer_name: str
    responder_id: int | None
    builder: ResponseBuilder
    linted: set[str] = field(default_factory=set)  # response shapes pkilint has passed (RFC 6960 validators)


def load_identities(
    db: Database, stores: KeyStores, settings: OcspSettings, now: datetime, known: dict[int, Identity]
) -> dict[int, Identity]:
    """The signing identity of every TLS issuer that has one now, by issuer id. An identity in *known* whose
    responder is still the active one is kept as it is (its key loaded, its shapes linted); others are rebuilt."""
    current: dict[int, Identity] = {}
    with db.session() as session:
        for issuer in session.scalars(select(Issuer).where(Issuer.kind == "tls")).all():
            responders = session.scalars(
                select(OcspResponder)
                .where(
                    OcspResponder.issuer_id == issuer.id,
                    OcspResponder.status == "active",
                    OcspResponder.not_before <= now,
                    OcspResponder.not_after > now,
                )
                .order_by(OcspResponder.not_after.desc())
            ).all()
            with_issuer = issuer.name in settings.sign_with_issuer
            if not responders and not with_issuer:
                continue
            responder = None if with_issuer else responders[0]
            responder_id = None if responder is None else responder.id
            previous = known.get(issuer.id)
            if previous is not None and previous.responder_id == responder_id:
                current[issuer.id] = previous
            else:
                current[issuer.id] = _identity(stores, settings, issuer, responder)
    return current


def _identity(stores: KeyStores, settings: OcspSettings, issuer: Issuer, responder: OcspResponder | None) -> Identity:
    issuer_certificate = x509.load_der_x509_certificate(issuer.certificate_der)
    key_record: KeyRecord = issuer.key if responder is None else responder.key
    key = stores.get(key_record.store).load(key_record.handle, KeyAlgorithm(key_record.algorithm))
    responder_certificate = None
    if responder is not None:
        responder_certificate = x509.load_der_x509_certificate(responder.certificate.der)
    builder = ResponseBuilder(
        issuer=issuer_certificate,
        key=key,
        responder_certificate=responder_certificate,
        sha256_cert_ids=settings.sha256_cert_ids,
    )
    return Identity(issuer.id, issuer.name, None if responder is None else responder.id, builder)
