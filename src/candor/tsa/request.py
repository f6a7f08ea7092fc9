"""TimeStampReq (RFC 3161 2.4.1), parsed strictly as DER (X.690 10) into what a token needs.

::

    TimeStampReq ::= SEQUENCE {
       version         INTEGER { v1(1) },
       messageImprint  MessageImprint,     -- SEQUENCE { hashAlgorithm AlgorithmIdentifier, hashedMessage OCTET STRING }
       reqPolicy       TSAPolicyId OPTIONAL,
       nonce           INTEGER OPTIONAL,
       certReq         BOOLEAN DEFAULT FALSE,
       extensions      [0] IMPLICIT Extensions OPTIONAL }

Bytes that are not exactly one DER TimeStampReq (BER lengths, trailing bytes, fields out of order, a BOOLEAN
other than 00 or FF, a non-minimal INTEGER) are refused with badDataFormat. One BER habit is accepted: an
explicit certReq FALSE (DER omits a value equal to its DEFAULT; some encoders write it anyway, and it is
unambiguous). Then, in this order: a version other
than v1 (badRequest), a hash algorithm that is not SHA-2 or SHA-3 (badAlg: SHA-1 by CSBR 6.8, MD5 and the
unknown alike), an imprint whose length is not its algorithm's (badDataFormat), a reqPolicy other than the
TSA's (unacceptedPolicy) and any extension, critical or not (unacceptedExtension: RFC 3161 2.4.1 says a
server that does not recognise an extension SHALL NOT issue a token, and this one supports none).

The MessageImprint and the nonce are kept as their DER bytes: the token echoes them byte for byte.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from candor.profiles.der import OBJECT_IDENTIFIER, OCTET_STRING, SEQUENCE, DERError, decode_oid, read
from candor.tsa.asn1 import BY_OID_CONTENT, REFUSED_IMPRINT_ALGORITHMS, HashAlgorithm, encode_oid
from candor.tsa.reply import FailureInfo, Rejected

BOOLEAN = 0x01
INTEGER = 0x02
NULL = 0x05
EXTENSIONS = 0xA0  # [0] IMPLICIT SEQUENCE OF Extension
# The optional fields come in this order: reqPolicy, nonce, certReq, extensions.
_RANK = {OBJECT_IDENTIFIER: 1, INTEGER: 2, BOOLEAN: 3, EXTENSIONS: 4}


@dataclass(frozen=True)
class TimeStampRequest:
    message_imprint: bytes  # the whole MessageImprint TLV, as received
    algorithm: HashAlgorithm
    hashed_message: bytes
    policy: str | None  # reqPolicy, dotted
    nonce: bytes | None  # the whole INTEGER TLV, as received
    cert_req: bool


def _malformed(what: str) -> Rejected:
    return Rejected(FailureInfo.BAD_DATA_FORMAT, f"not a DER TimeStampReq: {what}")


def _integer(data: bytes, start: int, end: int, what: str) -> None:
    """X.690 8.3.2: an INTEGER's contents are at least one octet, and minimal."""
    if end == start:
        raise _malformed(f"{what} is an empty INTEGER")
    if end - start > 1 and (
        (data[start] == 0x00 and data[start + 1] < 0x80) or (data[start] == 0xFF and data[start + 1] >= 0x80)
    ):
        raise _malformed(f"{what} is not minimally encoded")


def _oid(data: bytes, start: int, end: int, what: str) -> str:
    try:
        return decode_oid(data[start:end])
    except DERError as exc:
        raise _malformed(f"{what}: {exc}") from None


def parse_request(data: bytes, *, policy: str) -> TimeStampRequest:
    """The request in *data* to a TSA whose policy is *policy* (dotted), or :class:`Rejected` with the failInfo
    that RFC 3161 names for what is wrong."""
    try:
        return _parse(data, policy)
    except DERError as exc:
        raise _malformed(str(exc)) from None


@functools.cache
def _oid_content(dotted: str) -> bytes:
    return encode_oid(dotted)[2:]


def _parse(data: bytes, tsa_policy: str) -> TimeStampRequest:
    tag, start, end = read(data, 0, len(data))
    if tag != SEQUENCE:
        raise _malformed("not a SEQUENCE")
    if end != len(data):
        raise _malformed(f"{len(data) - end} byte(s) after the request")
    tag, value_start, position = read(data, start, end)
    if tag != INTEGER:
        raise _malformed("version is not an INTEGER")
    _integer(data, value_start, position, "version")
    version_ok = data[value_start:position] == b"\x01"
    imprint_start = position
    tag, imprint_content, position = read(data, position, end)
    if tag != SEQUENCE:
        raise _malformed("messageImprint is not a SEQUENCE")
    found, parameters, hashed = _message_imprint(data, imprint_content, position)
    message_imprint = data[imprint_start:position]

    policy: str | None = None
    nonce: bytes | None = None
    cert_req = False
    extensions: list[str] = []
    order = 0
    while position < end:
        field_start = position
        tag, content, position = read(data, position, end)
        rank = _RANK.get(tag)
        if rank is None or rank <= order:
            raise _malformed(f"unexpected element with tag 0x{tag:02x} at offset {field_start}")
        order = rank
        if tag == OBJECT_IDENTIFIER:  # the TSA's own policy is recognised by its bytes
            same = data[content:position] == _oid_content(tsa_policy)
            policy = tsa_policy if same else _oid(data, content, position, "reqPolicy")
        elif tag == INTEGER:
            _integer(data, content, position, "nonce")
            nonce = data[field_start:position]
        elif tag == BOOLEAN:
            value = data[content:position]
            if value not in (b"\xff", b"\x00"):  # DER: TRUE is FF; an explicit FALSE (BER) is taken as written
                raise _malformed("certReq must be FF (TRUE) or 00 (FALSE)")
            cert_req = value == b"\xff"
        else:
            extensions = _extensions(data, content, position)

    if not version_ok:
        raise Rejected(FailureInfo.BAD_REQUEST, "only version 1 time-stamp requests are supported")
    algorithm = _imprint_algorithm(found, parameters)
    if len(hashed) != algorithm.length:
        raise Rejected(
            FailureInfo.BAD_DATA_FORMAT,
            f"a {algorithm.name} imprint is {algorithm.length} octets, not {len(hashed)} (RFC 3161 2.4.1)",
        )
    if policy is not None and policy != tsa_policy:
        raise Rejected(FailureInfo.UNACCEPTED_POLICY, f"this TSA issues tokens under policy {tsa_policy} only")
    if extensions:
        raise Rejected(
            FailureInfo.UNACCEPTED_EXTENSION, f"this TSA supports no request extension ({', '.join(extensions)})"
        )
    return TimeStampRequest(message_imprint, algorithm, hashed, policy, nonce, cert_req)


def _message_imprint(data: bytes, start: int, end: int) -> tuple[HashAlgorithm | str, bytes, bytes]:
    """(the hash algorithm, or its OID when not one of the accepted ones; its parameters' DER; hashedMessage) of a
    MessageImprint's contents."""
    tag, algorithm_start, position = read(data, start, end)
    if tag != SEQUENCE:
        raise _malformed("hashAlgorithm is not a SEQUENCE")
    tag, oid_start, oid_end = read(data, algorithm_start, position)
    if tag != OBJECT_IDENTIFIER:
        raise _malformed("hashAlgorithm does not start with an OBJECT IDENTIFIER")
    known = BY_OID_CONTENT.get(data[oid_start:oid_end])
    algorithm = known if known is not None else _oid(data, oid_start, oid_end, "hashAlgorithm")
    parameters = data[oid_end:position]
    if parameters:
        read(data, oid_end, position)  # one well-formed element
    tag, hashed_start, hashed_end = read(data, position, end)
    if tag != OCTET_STRING:
        raise _malformed("hashedMessage is not an OCTET STRING")
    if hashed_end != end:
        raise _malformed("messageImprint has more than two elements")
    return algorithm, parameters, data[hashed_start:hashed_end]


def _imprint_algorithm(found: HashAlgorithm | str, parameters: bytes) -> HashAlgorithm:
    if not isinstance(found, HashAlgorithm):
        refused = REFUSED_IMPRINT_ALGORITHMS.get(found)
        if refused is not None:
            raise Rejected(FailureInfo.BAD_ALG, f"{refused} imprints are refused (CSBR 6.8); use SHA-256 or stronger")
        raise Rejected(FailureInfo.BAD_ALG, f"hash algorithm {found} is not supported (SHA-2 and SHA-3 are)")
    algorithm = found
    if parameters not in (b"", bytes((NULL, 0))):
        raise Rejected(FailureInfo.BAD_ALG, f"{algorithm.name} takes no parameters (absent or NULL, RFC 5754 2)")
    return algorithm


def _extensions(data: bytes, start: int, end: int) -> list[str]:
    """The OIDs of a well-formed, non-empty Extensions (RFC 5280 4.1) in data[start:end]."""
    oids: list[str] = []
    position = start
    while position < end:
        tag, content, position = read(data, position, end)
        if tag != SEQUENCE:
            raise _malformed("an extension is not a SEQUENCE")
        tag, oid_start, inner = read(data, content, position)
        if tag != OBJECT_IDENTIFIER:
            raise _malformed("an extension does not start with an OBJECT IDENTIFIER")
        oids.append(_oid(data, oid_start, inner, "extnID"))
        tag, value_start, inner = read(data, inner, position)
        if tag == BOOLEAN:
            if data[value_start:inner] != b"\xff":
                raise _malformed("an extension's critical flag must be omitted when FALSE")
            tag, value_start, inner = read(data, inner, position)
        if tag != OCTET_STRING or inner != position:
            raise _malformed("an extension's extnValue is not one OCTET STRING")
    if not oids:
        raise _malformed("extensions is empty (SIZE (1..MAX))")
    return oids
