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


@dataclass(frozen=True, slots=True)  # no __dict__: an index holds one per issued serial
class Entry:
    """One pre-signed response. *keys* are issuerKeyHash + serial INTEGER content, one per CertID hash;
    *requests* are the no-nonce OCSPRequests that ask for it, for the one-lookup GET path."""

    keys: tuple[bytes, ...]
    requests: tuple[bytes, ...]
    der: bytes
    this_update: datetime
    next_update: datetime
    etag: bytes = b""  # quoted hex SHA-256, as sent; computed from der unless given
    next_update_ts: float = field(init=False)
    headers: tuple[tuple[bytes, bytes], ...] = field(init=False)
    # The header lines other than the ETag, as HTTP/1.1 sends them (shared, as their pairs are; see
    # candor.revocation.ocsp.protocol)
    lines: bytes = field(init=False)

    def __post_init__(self) -> None:
        etag = self.etag or b'"' + hashlib.sha256(self.der).hexdigest().encode() + b'"'
        object.__setattr__(self, "next_update_ts", self.next_update.timestamp())
        object.__setattr__(self, "etag", etag)
        # Only the ETag is this entry's own: the other header pairs are shared by every entry that has the same
        # length and times (fewer objects to touch per request, and less memory per entry)
        headers = (
            CONTENT_TYPE,
            _content_length(len(self.der)),
            (b"etag", etag),
            _http_date(b"last-modified", self.this_update),
            _http_date(b"expires", self.next_update),
        )
        object.__setattr__(self, "headers", headers)
        object.__setattr__(self, "lines", _lines(headers[1], headers[3], headers[4]))

    @classmethod
    def make(
        cls,
        hashes: IssuerHashes,
        content: bytes,
        der: bytes,
        this_update: datetime,
        next_update: datetime,
        *,
        sha256: bool,
        etag_hex: str = "",
    ) -> Entry:
        """The entry of *der*, the response for the serial whose INTEGER content octets are *content* (as
        ``serials.serial_hex`` stores them); *etag_hex*, its SHA-256 in hex, when already computed."""
        return cls(
            keys=hashes.lookup_keys_of(content, sha256=sha256),
            requests=tuple([request_for(c) for c in hashes.cert_ids_of(content, sha256=sha256)]),
            der=der,
            this_update=this_update,
            next_update=next_update,
            etag=b'"' + etag_hex.encode() + b'"' if etag_hex else b"",
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


CONTENT_TYPE = (b"content-type", b"application/ocsp-response")


@functools.lru_cache(maxsize=64)
def _content_length(size: int) -> tuple[bytes, bytes]:
    return b"content-length", b"%d" % size


@functools.lru_cache(maxsize=256)  # a batch shares its thisUpdate and nextUpdate
def _http_date(name: bytes, moment: datetime) -> tuple[bytes, bytes]:
    return name, format_datetime(moment.astimezone(UTC), usegmt=True).encode()


@functools.lru_cache(maxsize=256)
def _lines(*pairs: tuple[bytes, bytes]) -> bytes:
    return b"".join([b"%s: %s\r\n" % pair for pair in (CONTENT_TYPE, *pairs)])


def issuer_hashes(certificate_der: bytes) -> IssuerHashes:
    return IssuerHashes.of(x509.load_der_x509_certificate(certificate_der))
