"""The little DER (X.690 8 and 10) that precertificate handling needs: walk a TBSCertificate's top-level fields,
drop extensions by OID and re-encode the lengths. Single-octet tags and definite lengths only, which is all a
DER TBSCertificate (RFC 5280 4.1) contains."""

from __future__ import annotations

from collections.abc import Iterator, Set

SEQUENCE = 0x30
OCTET_STRING = 0x04
OBJECT_IDENTIFIER = 0x06
EXTENSIONS_TAG = 0xA3  # RFC 5280 4.1: extensions [3] EXPLICIT Extensions


class DERError(ValueError):
    """The bytes are not the DER this module expects."""


def encode_length(length: int) -> bytes:
    """X.690 10.1: the definite form with the fewest octets."""
    if length < 0x80:
        return bytes([length])
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def encode(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + encode_length(len(content)) + content


def encode_octet_string(content: bytes) -> bytes:
    return encode(OCTET_STRING, content)


def read(data: bytes, offset: int, end: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the TLV at *offset*, which must end by *end*."""
    if offset + 2 > end:
        raise DERError(f"truncated header at offset {offset}")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise DERError(f"multi-octet tag at offset {offset}")
    first = data[offset + 1]
    position = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or position + count > end:
            raise DERError(f"indefinite or oversized length at offset {offset}")
        length = int.from_bytes(data[position : position + count], "big")
        if length < 0x80 or data[position] == 0:
            raise DERError(f"length at offset {offset} is not in its shortest form")
        position += count
    if position + length > end:
        raise DERError(f"contents at offset {offset} run past their container")
    return tag, position, position + length


def children(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(tag, TLV start, contents start, TLV end) of each element in data[start:end]."""
    offset = start
    while offset < end:
        tag, content_start, content_end = read(data, offset, end)
        yield tag, offset, content_start, content_end
        offset = content_end


def decode_oid(content: bytes) -> str:
    """X.690 8.19: the dotted form of an OBJECT IDENTIFIER's contents."""
    arcs: list[int] = []
    value = 0
    for index, octet in enumerate(content):
        if value == 0 and octet == 0x80:
            raise DERError("OBJECT IDENTIFIER subidentifier with a leading 0x80")
        value = (value << 7) | (octet & 0x7F)
        if not octet & 0x80:
            arcs.append(value)
            value = 0
        elif index == len(content) - 1:
            raise DERError("truncated OBJECT IDENTIFIER")
    if not arcs:
        raise DERError("empty OBJECT IDENTIFIER")
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in (first, arcs[0] - 40 * first, *arcs[1:]))


def remove_extensions(tbs: bytes, oids: Set[str]) -> bytes:
    """*tbs* (a DER TBSCertificate) without the extensions whose OIDs (dotted) are in *oids*; the
    [3] wrapper is dropped if no extension remains (RFC 5280 4.1: Extensions has SIZE (1..MAX))."""
    tag, start, end = read(tbs, 0, len(tbs))
    if tag != SEQUENCE or end != len(tbs):
        raise DERError("not a single DER SEQUENCE")
    fields = list(children(tbs, start, end))
    if not fields or fields[-1][0] != EXTENSIONS_TAG:
        return tbs  # no extensions at all
    _, wrapper_start, wrapper_content, wrapper_end = fields[-1]
    inner_tag, inner_start, inner_end = read(tbs, wrapper_content, wrapper_end)
    if inner_tag != SEQUENCE or inner_end != wrapper_end:
        raise DERError("extensions [3] does not hold exactly one SEQUENCE")
    kept: list[bytes] = []
    removed = False
    for extension_tag, extension_start, extension_content, extension_end in children(tbs, inner_start, inner_end):
        if extension_tag != SEQUENCE:
            raise DERError(f"extension at offset {extension_start} is not a SEQUENCE")
        oid_tag, oid_start, oid_end = read(tbs, extension_content, extension_end)
        if oid_tag != OBJECT_IDENTIFIER:
            raise DERError(f"extension at offset {extension_start} does not start with an OBJECT IDENTIFIER")
        if decode_oid(tbs[oid_start:oid_end]) in oids:
            removed = True
        else:
            kept.append(tbs[extension_start:extension_end])
    if not removed:
        return tbs
    extensions = encode(EXTENSIONS_TAG, encode(SEQUENCE, b"".join(kept))) if kept else b""
    return encode(SEQUENCE, tbs[start:wrapper_start] + extensions)
