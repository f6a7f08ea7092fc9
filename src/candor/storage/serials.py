"""Certificate serial numbers as stored: lowercase hex of the DER INTEGER content octets.

A serial is kept exactly as it is encoded in the certificate: the minimal two's-complement content octets of
the DER INTEGER, so a positive value whose first octet has the high bit set keeps its leading ``00``
(``0x80...`` is stored as ``"0080..."``). That makes the stored text round-trip byte for byte and gives every
serial exactly one spelling, so the database's UNIQUE(issuer_id, serial_hex) constraint really is unique per
value. RFC 5280 4.1.2.2: serials are positive and at most 20 octets long.
"""

from __future__ import annotations

from candor.errors import CandorError, ErrorKind

MAX_SERIAL_OCTETS = 20  # RFC 5280 4.1.2.2
_HEX_DIGITS = frozenset("0123456789abcdef")


def serial_to_hex(serial: int) -> str:
    """Encode a positive serial as the lowercase hex of its minimal DER INTEGER content octets."""
    if isinstance(serial, bool) or not isinstance(serial, int):
        raise CandorError(ErrorKind.POLICY, f"a serial number must be an integer, not {type(serial).__name__}")
    if serial <= 0:
        raise CandorError(ErrorKind.POLICY, "a serial number must be positive (RFC 5280 4.1.2.2)")
    # bit_length() // 8 + 1 is exactly the minimal two's-complement length: it adds a 00 octet only when
    # the top bit of the magnitude falls on an octet boundary and would otherwise read as a sign bit.
    octets = serial.to_bytes(serial.bit_length() // 8 + 1, "big")
    if len(octets) > MAX_SERIAL_OCTETS:
        raise CandorError(
            ErrorKind.POLICY,
            f"a serial number is at most {MAX_SERIAL_OCTETS} octets in DER (RFC 5280 4.1.2.2); "
            f"this one needs {len(octets)}",
        )
    return octets.hex()


def serial_from_hex(serial_hex: str) -> int:
    """Decode the stored form; refuse anything that is not exactly what :func:`serial_to_hex` produces."""
    if not isinstance(serial_hex, str) or not serial_hex or not set(serial_hex) <= _HEX_DIGITS:
        raise CandorError(ErrorKind.POLICY, "a stored serial must be non-empty lowercase hex")
    if len(serial_hex) % 2:
        raise CandorError(ErrorKind.POLICY, "a stored serial must have an even number of hex digits")
    octets = bytes.fromhex(serial_hex)
    if octets[0] >= 0x80:
        raise CandorError(ErrorKind.POLICY, f"serial {serial_hex} is negative in two's complement")
    value = int.from_bytes(octets, "big")
    if value == 0:
        raise CandorError(ErrorKind.POLICY, "a serial number must be positive (RFC 5280 4.1.2.2)")
    if len(octets) > MAX_SERIAL_OCTETS:
        raise CandorError(
            ErrorKind.POLICY,
            f"serial {serial_hex} is longer than {MAX_SERIAL_OCTETS} octets (RFC 5280 4.1.2.2)",
        )
    if serial_to_hex(value) != serial_hex:
        raise CandorError(ErrorKind.POLICY, f"serial {serial_hex} is not in minimal DER form")
    return value
