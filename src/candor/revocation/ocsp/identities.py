"""Who signs an issuer's OCSP responses (RFC 6960 2.6, 4.2.2.2; BR 7.1.2.8): its active delegated responder, or the
issuer itself when ``[ocsp] sign_with_issuer`` names it. The pre-signer and the on-demand signer both ask here, so a
response signed on demand has the signer its pre-signed twin has. Signer side: this loads keys from the key stores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from sqlalchemy import and_, bindparam, select

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


# Every TLS issuer with each of its responders valid at :now (outer join: an issuer without one still appears, for
# ``sign_with_issuer``), newest notAfter first. Built once: the pre-signer asks at every pass, and a pass follows
# every issuance, so the check that nothing changed must cost one indexed read, not the issuers' ORM objects.
_ACTIVE = (
    select(Issuer.id, Issuer.name, OcspResponder.id)
    .select_from(Issuer)
    .outerjoin(
        OcspResponder,
        and_(
            OcspResponder.issuer_id == Issuer.id,
            OcspResponder.status == "active",
            OcspResponder.not_before <= bindparam("now"),
            OcspResponder.not_after > bindparam("now"),
        ),
    )
    .where(Issuer.kind == "tls")
    .order_by(Issuer.id, OcspResponder.not_after.desc())
)


def load_identities(
    db: Database, stores: KeyStores, settings: OcspSettings, now: datetime, known: dict[int, Identity]
) -> dict[int, Identity]:
    """The signing identity of every TLS issuer that has one now, by issuer id. An identity in *known* whose
    responder is still the active one is kept as it is (its key loaded, its shapes linted); others are rebuilt."""
    signers: dict[int, tuple[str, int | None]] = {}  # issuer id -> (name, responder id or None for the CA key)
    with db.reader() as connection:
        for issuer_id, name, active in connection.execute(_ACTIVE, {"now": now}):
            if issuer_id in signers:
                continue  # a responder with a later notAfter came first
            if name in settings.sign_with_issuer:
                signers[issuer_id] = (name, None)
            elif active is not None:
                signers[issuer_id] = (name, active)
    current: dict[int, Identity] = {}
    stale = [
        issuer_id for issuer_id, (_name, responder_id) in signers.items() if not _kept(known, issuer_id, responder_id)
    ]
    for issuer_id in signers.keys() - set(stale):
        current[issuer_id] = known[issuer_id]
    if stale:
        with db.session() as session:
            for issuer_id in stale:
                issuer = session.get(Issuer, issuer_id)
                responder_id = signers[issuer_id][1]
                responder = None if responder_id is None else session.get(OcspResponder, responder_id)
                if issuer is None or (responder_id is not None and responder is None):
                    continue  # removed since the read above: the next pass sees what is there then
                current[issuer_id] = _identity(stores, settings, issuer, responder)
    return current


def _kept(known: dict[int, Identity], issuer_id: int, responder_id: int | None) -> bool:
    previous = known.get(issuer_id)
    return previous is not None and previous.responder_id == responder_id


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
