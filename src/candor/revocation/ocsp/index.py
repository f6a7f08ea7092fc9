"""The in-memory response index and the request lookup (RFC 6960 4.1; RFC 5019 2.1).

Two dictionaries: the no-nonce OCSPRequest bytes themselves (the common GET is a base64 decode and one
lookup), and issuerKeyHash + serial INTEGER content (any other well-formed request, after parsing).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.x509 import ocsp
from sqlalchemy import select

from candor.revocation.ocsp import der
from candor.revocation.ocsp.entries import Entry, issuer_hashes
from candor.storage import Database
from candor.storage.models import Issuer
from candor.storage.models_ocsp import OcspResponseRecord

SUPPORTED_HASHES = {"sha1": 20, "sha256": 32}  # RFC 5019 2.1.1 (SHA-1) and RFC 9919 (SHA-256)


# RFC 9654 2.1 (which obsoletes RFC 8954 and its 32): Nonce ::= OCTET STRING (SIZE(1..128)); a request with a nonce of
# 0 octets or more than 128 is refused with malformedRequest.
MAX_NONCE = 128


@dataclass(frozen=True)
class ParsedRequest:
    key: bytes  # issuerKeyHash + serial INTEGER content
    nonce: bytes | None
    serial: int = 0
    sha256: bool = False  # the CertID is hashed with SHA-256 (else SHA-1)
    issuer: bytes = b""  # the CertID's issuerNameHash and issuerKeyHash, each as its OCTET STRING TLV

    def names_issuer_of(self, entry: Entry) -> bool:
        """Whether this request's CertID names the issuer of *entry* by both hashes (RFC 6960 4.1.1): found by
        issuerKeyHash and serial, a response may still be for another issuer, one with the same key and another
        name. The entry's no-nonce requests hold its CertIDs (SHA-1, and SHA-256 when signed with it); the
        issuerNameHash OCTET STRING followed by the issuerKeyHash one occurs in a request only there."""
        issuer = self.issuer
        return any(issuer in request for request in entry.requests)


class Malformed(ValueError):
    """RFC 6960 4.2.1 malformedRequest."""


def parse_request(raw: bytes) -> ParsedRequest:
    """One CertID per request (RFC 5019 2.1.1), hashed with SHA-1 or SHA-256, and a nonce, if any, of 1 to 128
    octets (RFC 9654 2.1); anything else is malformed."""
    try:
        request = ocsp.load_der_ocsp_request(raw)
        algorithm = request.hash_algorithm.name
        key_hash = request.issuer_key_hash
        name_hash = request.issuer_name_hash
        serial = request.serial_number
        nonce = None
        for extension in request.extensions:
            if isinstance(extension.value, x509.OCSPNonce):
                nonce = extension.value.nonce
    except Exception as exc:  # cryptography raises ValueError and UnsupportedAlgorithm, among others
        raise Malformed(str(exc)) from None
    if not SUPPORTED_HASHES.get(algorithm) == len(key_hash) == len(name_hash) or serial < 0:
        raise Malformed(f"unsupported CertID hash {algorithm}")
    if nonce is not None and not 1 <= len(nonce) <= MAX_NONCE:
        raise Malformed(f"RFC 9654 2.1: a nonce of {len(nonce)} octets")
    key = key_hash + der.integer_content(serial)
    issuer = der.octet_string(name_hash) + der.octet_string(key_hash)
    return ParsedRequest(key=key, nonce=nonce, serial=serial, sha256=algorithm == "sha256", issuer=issuer)


class ResponseIndex:
    """Pre-signed responses in memory; a :class:`~candor.revocation.ocsp.presign.ResponseSink`."""

    def __init__(self) -> None:
        self.by_request: dict[bytes, Entry] = {}
        self.by_key: dict[bytes, Entry] = {}
        self._lock = threading.Lock()  # writers only; readers see whole entries (dict item assignment)

    def __len__(self) -> int:
        return len(self.by_key)

    def publish(self, entries: Sequence[Entry]) -> None:
        with self._lock:
            for entry in entries:
                for key in entry.keys:
                    self.by_key[key] = entry
                for request in entry.requests:
                    self.by_request[request] = entry


def load_from_database(db: Database, index: ResponseIndex, *, since: datetime | None = None) -> datetime | None:
    """Put the stored responses (those signed at or after *since*) into *index*; returns the newest
    thisUpdate seen, to pass as *since* next time (a responder node that shares the database polls this)."""
    with db.session() as session:
        hashes = {}
        for issuer in session.scalars(select(Issuer).where(Issuer.kind == "tls")):
            issuer_hash = issuer_hashes(issuer.certificate_der)
            hashes[issuer_hash.key_sha1] = issuer_hash
        query = select(
            OcspResponseRecord.issuer_key_sha1,
            OcspResponseRecord.serial_hex,
            OcspResponseRecord.der,
            OcspResponseRecord.this_update,
            OcspResponseRecord.next_update,
        )
        if since is not None:
            query = query.where(OcspResponseRecord.this_update >= since)
        newest = since
        batch: list[Entry] = []
        for key_sha1, serial_hex, response, this_update, next_update in session.execute(query):
            known = hashes.get(key_sha1)
            if known is None:
                continue
            sha256 = _has_sha256(response)
            content = bytes.fromhex(serial_hex)
            batch.append(Entry.make(known, content, response, this_update, next_update, sha256=sha256))
            newest = this_update if newest is None else max(newest, this_update)
            if len(batch) >= 10_000:
                index.publish(batch)
                batch = []
        index.publish(batch)
    return newest


SHA256_CERT_ID = bytes.fromhex("300d06096086480165030402010500")  # the CertID's AlgorithmIdentifier


def _has_sha256(response: bytes) -> bool:
    """Whether the response carries the SHA-256 CertID too (the setting when it was signed)."""
    return SHA256_CERT_ID in response
