"""The shard function, and the URLs baked into certificates at issuance."""

from __future__ import annotations

import secrets

import pytest
from crl_support import crldp_url
from issuing import BASE_URL, CA

from candor.errors import CandorError
from candor.revocation.crl import shard_of, shard_url, shard_urls
from candor.revocation.crl.shards import hex_suffixes
from candor.storage import serial_to_hex


def test_shard_is_the_serial_modulo_the_shard_count() -> None:
    assert shard_of(0x1234, 16) == 4
    assert shard_of(0x1234, 1) == 0
    assert shard_of(2**127 + 5, 7) == (2**127 + 5) % 7


@pytest.mark.parametrize("shards", [1, 2, 16, 128, 256, 4096])
def test_the_database_filter_by_hex_ending_selects_exactly_the_shard(shards: int) -> None:
    for _ in range(2000):
        serial = secrets.randbits(128) | 1 << 127
        shard = shard_of(serial, shards)
        width, endings = hex_suffixes(shard, shards) or (0, frozenset())
        if shards == 1:
            continue
        assert serial_to_hex(serial)[-width:] in endings
        other = (shard + 1) % shards
        assert serial_to_hex(serial)[-width:] not in (hex_suffixes(other, shards) or (0, frozenset()))[1]


def test_a_count_that_divides_no_power_of_256_is_filtered_in_python() -> None:
    assert hex_suffixes(3, 100) is None


@pytest.mark.parametrize("shards", [0, 4097])
def test_shard_counts_outside_the_stored_range_are_refused(shards: int) -> None:
    with pytest.raises(CandorError):
        shard_of(1, shards)


def test_ccadb_array_lists_every_shard_url_in_order() -> None:
    assert shard_urls("http://x", "tls-e1", 3) == [
        "http://x/crl/tls-e1/0.crl",
        "http://x/crl/tls-e1/1.crl",
        "http://x/crl/tls-e1/2.crl",
    ]


def test_precertificate_and_certificate_name_the_shard_of_their_serial(ca: CA) -> None:
    chain = ca.issue(["shard.example.com"])
    certificate = chain.certificate
    precertificate = ca.stored(certificate, "precertificate")
    expected = shard_url(BASE_URL, "tls-e1", shard_of(certificate.serial_number, 16))
    assert crldp_url(certificate) == crldp_url(precertificate) == expected
