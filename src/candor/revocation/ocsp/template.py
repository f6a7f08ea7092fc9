"""Pre-signing at volume: a response as a few byte splices around one signature.

Every response a :class:`~candor.revocation.ocsp.responses.ResponseBuilder` signs in one batch (one thisUpdate and
nextUpdate) has the same bytes except the serial, the certStatus and the signature. DER lengths depend only on the
lengths of what they enclose, so for one status and one serial length the TBSResponseData is ``pieces[0] + serial
+ pieces[1]`` (two CertIDs: ``+ serial + pieces[2]``), and for one TBS length and one signature length the
OCSPResponse is ``prefix + tbs + middle + signature + certs``. Both are computed on first use and cached (there are
at most 20 serial lengths and a handful of signature lengths). :meth:`ResponseBuilder.build` encodes the same
response field by field; tests/ocsp/test_presign.py holds the two byte-equal for every serial length and status.
"""

from __future__ import annotations

from datetime import datetime

from candor.revocation.ocsp import der
from candor.revocation.ocsp.responses import GOOD, ResponseBuilder, Status

MAX_SERIAL_OCTETS = 20  # RFC 5280 4.1.2.2 (and short-form INTEGER lengths below)


class BatchSigner:
    """Signs responses of one builder at one (thisUpdate, nextUpdate); producedAt = thisUpdate."""

    def __init__(self, builder: ResponseBuilder, this_update: datetime, next_update: datetime) -> None:
        self.builder = builder
        self.this_update = this_update
        self.next_update = next_update
        this = der.generalized_time(this_update)
        self._head = builder.responder_id + this
        self._times = this + der.tlv(0xA0, der.generalized_time(next_update))
        bodies = builder.issuer.cert_id_bodies()
        self._bodies = bodies if builder.sha256_cert_ids else bodies[:1]
        self._sign = builder.sign
        self._certs = builder.certs
        # The TBS pieces around the serial(s), joined with the serial as separator: for a good status, by serial
        # length (the common case, a list index); for a revoked one, by (status, length)
        self._good: list[tuple[bytes, ...] | None] = [None] * (MAX_SERIAL_OCTETS + 1)
        self._tbs: dict[tuple[Status, int], tuple[bytes, ...]] = {}
        self._outer: dict[int, tuple[bytes, bytes]] = {}  # by TBS length << 16 | signature length

    def sign(self, serial: bytes, status: Status) -> bytes:
        """The DER OCSPResponse for the serial whose INTEGER content octets (minimal, as stored) are *serial*."""
        if status is GOOD:
            return self.good(serial)
        pieces = self._tbs.get((status, len(serial)))
        if pieces is None:
            pieces = self._tbs[(status, len(serial))] = self._tbs_pieces(status, len(serial))
        return self._signed(serial.join(pieces))

    def good(self, serial: bytes) -> bytes:
        """:meth:`sign` with status good."""
        size = len(serial)
        pieces = self._good[size] if size <= MAX_SERIAL_OCTETS else None
        if pieces is None:
            pieces = self._good[size] = self._tbs_pieces(GOOD, size)
        return self._signed(serial.join(pieces))  # pieces[0] + serial + pieces[1] (+ serial + pieces[2])

    def _signed(self, tbs: bytes) -> bytes:
        signature = self._sign(tbs)
        key = len(tbs) << 16 | len(signature)
        outer = self._outer.get(key)
        if outer is None:
            outer = self._outer[key] = self._outer_pieces(len(tbs), len(signature))
        return b"".join((outer[0], tbs, outer[1], signature, self._certs))

    def _tbs_pieces(self, status: Status, size: int) -> tuple[bytes, ...]:
        """ResponseData { responderID, producedAt, responses SEQUENCE OF SingleResponse } around the serial(s):
        each SingleResponse is { CertID { hashAlgorithm, issuerNameHash, issuerKeyHash, serialNumber }, certStatus,
        thisUpdate, [0] nextUpdate } (RFC 6960 4.2.1)."""
        if not 0 < size <= MAX_SERIAL_OCTETS:
            raise ValueError(f"a serial of {size} octets")
        tail = status.encode() + self._times
        singles = []  # (what precedes the serial, what follows it) in each SingleResponse
        for body in self._bodies:
            cert_id_length = len(body) + 2 + size
            cert_id_head = b"\x30" + der.length(cert_id_length) + body + b"\x02" + bytes((size,))
            single_length = 1 + len(der.length(cert_id_length)) + cert_id_length + len(tail)
            singles.append(b"\x30" + der.length(single_length) + cert_id_head)
        responses_length = sum(len(head) + size + len(tail) for head in singles)
        responses_head = b"\x30" + der.length(responses_length)
        tbs_length = len(self._head) + len(responses_head) + responses_length
        first = b"\x30" + der.length(tbs_length) + self._head + responses_head + singles[0]
        if len(singles) == 1:
            return first, tail
        return first, tail + singles[1], tail

    def _outer_pieces(self, tbs_length: int, signature_length: int) -> tuple[bytes, bytes]:
        """OCSPResponse { successful, [0] EXPLICIT ResponseBytes { id-pkix-ocsp-basic, OCTET STRING
        BasicOCSPResponse { tbs, signatureAlgorithm, signature BIT STRING, [0] certs } } } before the TBS, and
        between the TBS and the signature."""
        middle = self.builder.algorithm + b"\x03" + der.length(signature_length + 1) + b"\x00"
        basic_length = tbs_length + len(middle) + signature_length + len(self._certs)
        basic_head = b"\x30" + der.length(basic_length)
        octets_length = len(basic_head) + basic_length
        octets_head = b"\x04" + der.length(octets_length)
        bytes_length = len(der.ID_PKIX_OCSP_BASIC) + len(octets_head) + octets_length
        bytes_head = b"\x30" + der.length(bytes_length)
        explicit_length = len(bytes_head) + bytes_length
        explicit_head = b"\xa0" + der.length(explicit_length)
        response_length = 3 + len(explicit_head) + explicit_length
        prefix = b"".join(
            [
                b"\x30" + der.length(response_length) + b"\x0a\x01\x00",  # responseStatus successful
                explicit_head,
                bytes_head + der.ID_PKIX_OCSP_BASIC,
                octets_head,
                basic_head,
            ]
        )
        return prefix, middle
