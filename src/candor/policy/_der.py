"""A minimal, strict DER reader (X.690 §10): just enough to take a SubjectPublicKeyInfo apart byte-exactly.

Only single-byte tags and definite, minimally encoded lengths are accepted; anything else is not DER.
Errors are :class:`CandorError` (POLICY) naming X.690, since the input came from an applicant.
"""

from __future__ import annotations

from candor.errors import CandorError, ErrorKind

SEQUENCE = 0x30
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
NULL = 0x05
OID = 0x06


def _fail(what: str) -> CandorError:
    return CandorError(ErrorKind.BAD_PUBLIC_KEY, f"X.690 DER: {what}")


def read_tlv(data: bytes, offset: int = 0) -> tuple[int, bytes, int]:
    """Read one element at *offset*: (tag, content, offset just past the element)."""
    if offset + 2 > len(data):
        raise _fail("truncated element")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise _fail("multi-byte tags are not expected here")
    first = data[offset + 1]
    position = offset + 2
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise _fail("indefinite length is not DER")
    else:
        count = first & 0x7F
        if count > 4 or position + count > len(data):
            raise _fail("length field too long or truncated")
        raw = data[position : position + count]
        if raw[0] == 0:
            raise _fail("length is not minimally encoded")
        length = int.from_bytes(raw, "big")
        if length < 0x80:
            raise _fail("long-form length used for a short length")
        position += count
    end = position + length
    if end > len(data):
        raise _fail("element runs past the end of its container")
    return tag, data[position:end], end


def read_single(data: bytes, expected_tag: int, what: str) -> bytes:
    """The content of the one element that makes up all of *data*; trailing bytes are refused."""
    tag, content, end = read_tlv(data)
    if tag != expected_tag:
        raise _fail(f"{what}: expected tag 0x{expected_tag:02x}, found 0x{tag:02x}")
    if end != len(data):
        raise _fail(f"{len(data) - end} trailing byte(s) after {what}")
    return content


def split_sequence(content: bytes) -> list[tuple[int, bytes, bytes]]:
    """The elements of a SEQUENCE's content as (tag, content, full encoding)."""
    elements: list[tuple[int, bytes, bytes]] = []
    offset = 0
    while offset < len(content):
        tag, inner, end = read_tlv(content, offset)
        elements.append((tag, inner, content[offset:end]))
        offset = end
    return elements


def positive_integer(content: bytes, what: str) -> int:
    """Decode INTEGER content that must be minimally encoded and greater than zero."""
    if not content:
        raise _fail(f"{what} is an empty INTEGER")
    if len(content) > 1 and ((content[0] == 0x00 and content[1] < 0x80) or (content[0] == 0xFF and content[1] >= 0x80)):
        raise _fail(f"{what} is not minimally encoded")
    if content[0] >= 0x80:
        raise CandorError(ErrorKind.BAD_PUBLIC_KEY, f"RFC 8017 §A.1.1: {what} is negative")
    value = int.from_bytes(content, "big")
    if value == 0:
        raise CandorError(ErrorKind.BAD_PUBLIC_KEY, f"RFC 8017 §A.1.1: {what} is zero")
    return value


def decode_oid(content: bytes) -> str:
    """Dotted form of OBJECT IDENTIFIER content (for messages only; exact matching compares bytes)."""
    if not content or content[-1] & 0x80:
        raise _fail("malformed OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    for index, byte in enumerate(content):
        if value == 0 and byte == 0x80 and (index == 0 or not content[index - 1] & 0x80):
            raise _fail("OBJECT IDENTIFIER arc is not minimally encoded")
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(arc) for arc in head + arcs[1:])
