"""TimeStampResp (RFC 3161 2.4.2): the granted reply around a token, and rejections with their PKIFailureInfo.

A rejection carries no token (``timeStampToken`` is OPTIONAL; some libraries wrongly require it, so the bytes
are written here, not built with one of them), a statusString saying why in one line, and the failInfo bit
the RFC names for the case. Every rejection of one kind has the same bytes, so they are made once.
"""

from __future__ import annotations

from enum import IntEnum

from candor.profiles.der import SEQUENCE, encode

INTEGER = 0x02
BIT_STRING = 0x03
UTF8_STRING = 0x0C

GRANTED_STATUS = bytes.fromhex("3003020100")  # PKIStatusInfo { status granted(0) }


class FailureInfo(IntEnum):
    """PKIFailureInfo bits (RFC 3161 2.4.2)."""

    BAD_ALG = 0  # unrecognized or unsupported Algorithm Identifier
    BAD_REQUEST = 2  # transaction not permitted or supported
    BAD_DATA_FORMAT = 5  # the data submitted has the wrong format
    TIME_NOT_AVAILABLE = 14  # the TSA's time source is not available
    UNACCEPTED_POLICY = 15  # the requested TSA policy is not supported by the TSA
    UNACCEPTED_EXTENSION = 16  # the requested extension is not supported by the TSA
    ADD_INFO_NOT_AVAILABLE = 17  # the additional information requested could not be understood or is not available
    SYSTEM_FAILURE = 25  # the request cannot be handled due to system failure

    @property
    def rfc_name(self) -> str:
        head, *rest = self.name.lower().split("_")
        return head + "".join(part.capitalize() for part in rest)


def failure_bits(bit: int) -> bytes:
    """The DER BIT STRING of a NamedBitList with only *bit* set (X.690 11.2.2: no trailing zero bits)."""
    octets = bytearray(bit // 8 + 1)
    octets[bit // 8] = 0x80 >> (bit % 8)
    unused = 7 - bit % 8
    return encode(BIT_STRING, bytes([unused]) + bytes(octets))


def rejection(failure: FailureInfo, reason: str) -> bytes:
    """A TimeStampResp with status rejection(2), *reason* as its statusString and *failure* as failInfo."""
    text = encode(SEQUENCE, encode(UTF8_STRING, reason.encode("utf-8")))  # PKIFreeText
    status = encode(SEQUENCE, encode(INTEGER, b"\x02") + text + failure_bits(failure))
    return encode(SEQUENCE, status)


def granted(token: bytes) -> bytes:
    """A TimeStampResp with status granted(0) and *token* (a ContentInfo)."""
    return encode(SEQUENCE, GRANTED_STATUS + token)


class Rejected(Exception):
    """A request the TSA answers with a rejection (never with an HTTP error)."""

    def __init__(self, failure: FailureInfo, reason: str) -> None:
        super().__init__(reason)
        self.failure = failure
        self.reason = reason

    @property
    def reply(self) -> bytes:
        return rejection(self.failure, self.reason)


SYSTEM_FAILURE = rejection(FailureInfo.SYSTEM_FAILURE, "the time-stamping service failed; try again later")
