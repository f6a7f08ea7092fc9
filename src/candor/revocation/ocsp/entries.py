"""A signed response as the serving side keeps it: the DER, its validity, the keys that find it, and its
HTTP headers encoded once (RFC 5019 6.2 and Boulder's responder: ETag, Last-Modified, Expires)."""

from __future__ import annotations

import functools
import hashlib
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime

from cryptography import x509

from candor.revocation.ocsp.responses import IssuerHashes, request_for

_HEAD = struct.Struct(">qqBBI")  # thisUpdate, nextUpdate (Unix seconds), #keys, #requests, len(der)


@dataclass(frozen=True)
class Entry:
    """One pre-signed response. *keys* are issuerKeyHash + serial INTEGER content, one per CertID hash;
    *requests* are the no-nonce OCSPRequests that ask for it, for the one-lookup GET path."""

    keys: tuple[bytes, ...]
    requests: tuple[bytes, ...]
    der: bytes
    this_update: datetime
    next_update: datetime
    next_update_ts: float = field(init=False)
    etag: bytes = field(init=False)  # quoted hex SHA-256, as sent
    headers: tuple[tuple[bytes, bytes], ...] = field(init=False)

    def __post_init__(self) -> None:
        etag = b'"' + hashlib.sha256(self.der).hexdigest().encode() + b'"'
        object.__setattr__(self, "next_update_ts", self.next_update.timestamp())
        object.__setattr__(self, "etag", etag)
        headers = (
            (b"content-type", b"application/ocsp-response"),
            (b"content-length", str(len(self.der)).encode()),
            (b"etag", etag),
            (b"last-modified", _http_date(self.this_update)),
            (b"expires", _http_date(self.next_update)),
        )
        object.__setattr__(self, "headers", headers)

    @classmethod
    def make(
        cls,
        hashes: IssuerHashes,
        serial: int,
        der: bytes,
        this_update: datetime,
        next_update: datetime,
        *,
        sha256: bool,
        cert_ids: tuple[bytes, ...] | None = None,
    ) -> Entry:
        return cls(
            keys=hashes.lookup_keys(serial, sha256=sha256),
            requests=tuple(request_for(c) for c in cert_ids or hashes.cert_ids(serial, sha256=sha256)),
            der=der,
            this_update=this_update,
            next_update=next_update,
        )

    def to_bytes(self) -> bytes:
        """A compact encoding for Redis (see :mod:`candor.revocation.ocsp.shared`)."""
        parts = [
            _HEAD.pack(
                int(self.this_update.timestamp()),
                int(self.next_update.timestamp()),
                len(self.keys),
                len(self.requests),
                len(self.der),
            )
        ]
        for item in (*self.keys, *self.requests):
            parts.append(struct.pack(">H", len(item)) + item)
        parts.append(self.der)
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> Entry:
        this_ts, next_ts, n_keys, n_requests, der_length = _HEAD.unpack_from(data)
        offset = _HEAD.size
        items: list[bytes] = []
        for _ in range(n_keys + n_requests):
            (size,) = struct.unpack_from(">H", data, offset)
            items.append(data[offset + 2 : offset + 2 + size])
            offset += 2 + size
        der = data[offset : offset + der_length]
        if len(der) != der_length:
            raise ValueError("truncated OCSP entry")
        return cls(
            keys=tuple(items[:n_keys]),
            requests=tuple(items[n_keys:]),
            der=der,
            this_update=datetime.fromtimestamp(this_ts, UTC),
            next_update=datetime.fromtimestamp(next_ts, UTC),
        )


@functools.lru_cache(maxsize=64)  # a batch shares its thisUpdate and nextUpdate
def _http_date(moment: datetime) -> bytes:
    return format_datetime(moment.astimezone(UTC), usegmt=True).encode()


def issuer_hashes(certificate_der: bytes) -> IssuerHashes:
    return IssuerHashes.of(x509.load_der_x509_certificate(certificate_der))
