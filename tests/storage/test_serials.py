"""Serial numbers: the stored hex is exactly the DER INTEGER content octets."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from candor.errors import CandorError, ErrorKind
from candor.storage import serial_from_hex, serial_to_hex


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, "01"),
        (0x05, "05"),  # odd-length plain hex is padded to whole octets
        (0xABC, "0abc"),
        (0x0F, "0f"),
        (0x0FFF_FFFF, "0fffffff"),
        (0x7F, "7f"),
        (0x80, "0080"),  # high bit set: the leading 00 keeps it positive
        (0xFF, "00ff"),
        (0x0100, "0100"),
        (0x8000_0000_0000_0000, "008000000000000000"),
        (0x0512_3456_789A_BCDE_F012_3456_789A_BCDE_F012_3456, "05123456789abcdef0123456789abcdef0123456"),
        (2**159 - 1, "7f" + "ff" * 19),  # the largest 20-octet serial
        (2**152, "01" + "00" * 19),
        (2**151, "0080" + "00" * 18),  # high bit set: 20 octets with the leading 00
    ],
)
def test_serial_hex_round_trip(value: int, expected: str) -> None:
    assert serial_to_hex(value) == expected
    assert serial_from_hex(expected) == value
    assert len(expected) % 2 == 0


@pytest.mark.parametrize("first", range(0x00, 0x10))
def test_serials_starting_with_small_octets(first: int) -> None:
    # 20 octets starting with 0x00..0x0F (0x00 followed by a high octet is the padding case)
    octets = bytes([first, 0x80 if first == 0 else 0x12]) + bytes(range(18))
    value = int.from_bytes(octets, "big")
    assert serial_to_hex(value) == octets.hex()
    assert serial_from_hex(octets.hex()) == value


def _tlv(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER TLV at *offset*."""
    tag, length = data[offset], data[offset + 1]
    start = offset + 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    return tag, start, start + length


def _der_serial_octets(value: int) -> bytes:
    """The serial INTEGER's content octets in a certificate encoded by `cryptography`."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "serial test")])
    der = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(value)
        .not_valid_before(datetime(2026, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2026, 2, 1, tzinfo=UTC))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    _, certificate_start, _ = _tlv(der, 0)
    _, tbs_start, _ = _tlv(der, certificate_start)
    tag, _, version_end = _tlv(der, tbs_start)
    assert tag == 0xA0  # [0] EXPLICIT version
    tag, serial_start, serial_end = _tlv(der, version_end)
    assert tag == 0x02  # INTEGER
    return der[serial_start:serial_end]


@pytest.mark.parametrize("value", [1, 0x05, 0x80, 0xABC, 2**64 + 1, 2**159 - 1, 2**151 + 12345])
def test_serial_hex_matches_der_content_octets(value: int) -> None:
    assert serial_to_hex(value) == _der_serial_octets(value).hex()


@pytest.mark.parametrize("value", [0, -1, -(2**64), 2**159, 2**160, True])
def test_serial_to_hex_refuses(value: int) -> None:
    with pytest.raises(CandorError) as caught:
        serial_to_hex(value)
    assert caught.value.kind is ErrorKind.POLICY


@pytest.mark.parametrize(
    "text",
    ["", "5", "abc", "0A", "00", "0005", "0001", "80", "ff", "00" + "80" + "00" * 19, "zz", " 05", "0x05"],
)
def test_serial_from_hex_refuses_non_canonical(text: str) -> None:
    with pytest.raises(CandorError) as caught:
        serial_from_hex(text)
    assert caught.value.kind is ErrorKind.POLICY


def test_random_serials_round_trip() -> None:
    for _ in range(2000):
        value = x509.random_serial_number()
        assert serial_from_hex(serial_to_hex(value)) == value
