"""WS-04 (serials), WS-01 (algorithms) and WS-08 (notBefore) at the signer."""

from __future__ import annotations

from collections import Counter

import pytest
from cryptography.hazmat.primitives import hashes
from issuing import CA

import candor.issuance.signer as signer_module
from candor.cli import build_parser
from candor.issuance import random_serial
from candor.policy.algorithms import KeyAlgorithm
from candor.storage import repositories
from candor.storage.serials import serial_to_hex


def test_ws04a_a_million_serials_are_unique_positive_and_below_2_159() -> None:
    serials = [random_serial() for _ in range(1_000_000)]
    assert len(set(serials)) == len(serials)
    assert all(0 < s < 2**159 and s.bit_length() > 64 for s in serials)


def test_ws04b_serial_bits_are_balanced() -> None:
    """No position of the 128 random bits is stuck or biased (the serial source is the CSPRNG)."""
    samples = 100_000
    ones: Counter[int] = Counter()
    for _ in range(samples):
        serial = random_serial()
        for bit in range(128):
            ones[bit] += (serial >> bit) & 1
    for bit in range(120):  # the top bits are shaped by the bit_length() > 64 rule only negligibly
        assert 0.48 < ones[bit] / samples < 0.52, bit


@pytest.mark.parametrize(
    "serial",
    [
        0x05_6D_15_70_00_00_00_00_00_00_00_00_00_00_00_01,  # "056D1570...": WoSign Issue H
        0x00_8F_00_00_00_00_00_00_00_00_00_00_00_00_00_01,  # a leading 00 byte in the random value
        0x8F_00_00_00_00_00_00_00_00_00_00_00_00_00_00_01,  # high bit set: DER needs a 00 prefix
        0x0F_FF_FF_FF_FF_FF_FF_FF_FF_FF_FF_FF_FF_FF_FF_FF,
        0x1_23_45_67_89_AB_CD_EF_01_23_45_67_89_AB_CD_EF,  # an odd number of hex digits
    ],
)
def test_ws04c_serials_round_trip_through_der_and_storage(ca: CA, serial: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signer_module, "random_serial", lambda: serial)
    certificate = ca.issue([f"s{serial:x}.example.com"]).certificate
    assert certificate.serial_number == serial
    with ca.db.session() as session:
        issuer = repositories.issuer_by_name(session, "tls-e1")
        assert issuer is not None
        record = repositories.serial_by_value(session, issuer, serial)
        assert record is not None
        assert record.serial_hex == serial_to_hex(serial)
        assert int(record.serial_hex, 16) == serial
    assert ca.stored(certificate, "precertificate").serial_number == serial


def test_ws01c_every_ca_key_signs_with_the_hash_the_br_pairs_it_with() -> None:
    expected = {
        KeyAlgorithm.ECDSA_P256: hashes.SHA256,
        KeyAlgorithm.ECDSA_P384: hashes.SHA384,
        KeyAlgorithm.RSA_2048: hashes.SHA256,
        KeyAlgorithm.RSA_3072: hashes.SHA256,
        KeyAlgorithm.RSA_4096: hashes.SHA256,
    }
    assert {a: type(a.signature_hash()) for a in KeyAlgorithm} == expected


def test_ws01a_issued_certificates_use_only_br_signature_algorithms(ca: CA) -> None:
    certificate = ca.issue(["sigalg.example.com"]).certificate
    assert certificate.signature_algorithm_oid.dotted_string == "1.2.840.10045.4.3.2"  # ecdsa-with-SHA256 (P-256 CA)


def test_ws08d_no_command_line_path_sets_dates_algorithms_or_skips_lint() -> None:
    forbidden = ("before", "after", "date", "sha1", "lint", "skip", "force", "override", "algorithm", "hash")
    parser = build_parser()
    options: list[str] = []
    stack = [parser]
    while stack:
        current = stack.pop()
        for action in current._actions:
            options.extend(action.option_strings)
            choices = getattr(action, "choices", None)
            if isinstance(choices, dict):
                stack.extend(choices.values())
    offending = [o for o in options if any(word in o.lower() for word in forbidden)]
    assert offending == []
    assert "--csr" in options  # the enumeration did reach the issue command


def test_a_serial_collision_is_retried_with_a_fresh_serial(ca: CA, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = ca.issue(["first.collide.example.com"]).certificate.serial_number
    draws = iter([taken, taken + 2**70])
    monkeypatch.setattr(signer_module, "random_serial", lambda: next(draws))
    second = ca.issue(["second.collide.example.com"]).certificate
    assert second.serial_number == taken + 2**70
