"""WS-06a/b, BR-08, BR-09, BR-12: subscriber key policy. Bad SPKIs are built by hand where no library would."""

from __future__ import annotations

import hashlib
import random
from functools import cache
from math import prod

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519

from candor.errors import CandorError, ErrorKind
from candor.policy.keys import EC_ALGORITHM_IDENTIFIERS, RSA_ALGORITHM_IDENTIFIER, check_subscriber_key
from candor.policy.weak_keys import ROCA_PRIMES, fermat_factor, has_roca_fingerprint, is_perfect_power

RNG = random.Random(20161024)  # deterministic: the day Mozilla announced the WoSign/StartCom distrust

# --- a tiny DER encoder --------------------------------------------------------------------------------


def tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + content


def seq(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


def integer(value: int) -> bytes:
    return tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray()
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return tlv(0x06, bytes(body))


def spki(algorithm: bytes, key: bytes) -> bytes:
    return seq(algorithm, tlv(0x03, b"\x00" + key))


def rsa_spki(n: int, e: int, algorithm: bytes = RSA_ALGORITHM_IDENTIFIER) -> bytes:
    return spki(algorithm, seq(integer(n), integer(e)))


def der(public_key: object) -> bytes:
    return public_key.public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


EC_PUBLIC_KEY = "1.2.840.10045.2.1"
P256_ALG = bytes.fromhex("301306072a8648ce3d020106082a8648ce3d030107")

# --- primes ----------------------------------------------------------------------------------------------


def is_probable_prime(n: int) -> bool:
    """Miller-Rabin with 32 random bases: enough for test fixtures."""
    if n < 4:
        return n in (2, 3)
    if any(n % p == 0 for p in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)):
        return n in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(32):
        x = pow(RNG.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def next_prime(n: int) -> int:
    n |= 1
    while not is_probable_prime(n):
        n += 2
    return n


def random_prime(bits: int) -> int:
    """A prime with its top two bits set, so a product of two has exactly 2*bits bits."""
    return next_prime(RNG.getrandbits(bits) | (3 << (bits - 2)) | 1)


def odd_modulus(bits: int) -> int:
    return RNG.getrandbits(bits) | (1 << (bits - 1)) | 1


@cache
def rsa_key(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, bits)


def refused(spki_der: bytes, match: str) -> CandorError:
    with pytest.raises(CandorError, match=match) as caught:
        check_subscriber_key(spki_der)
    assert caught.value.kind is ErrorKind.BAD_PUBLIC_KEY
    assert "\n" not in str(caught.value)
    return caught.value


# --- WS-06a: the refusal matrix -----------------------------------------------------------------------


def _ec_point(curve: ec.EllipticCurve) -> bytes:
    return (
        ec.generate_private_key(curve)
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )


def _explicit_p256() -> bytes:
    p = 2**256 - 2**224 + 2**192 + 2**96 - 1
    b = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    g = bytes.fromhex(
        "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
        "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"
    )
    parameters = seq(
        integer(1),
        seq(oid("1.2.840.10045.1.1"), integer(p)),
        seq(tlv(0x04, (p - 3).to_bytes(32, "big")), tlv(0x04, b.to_bytes(32, "big"))),
        tlv(0x04, g),
        integer(n),
        integer(1),
    )
    return spki(seq(oid(EC_PUBLIC_KEY), parameters), _ec_point(ec.SECP256R1()))


def _dsa_by_hand() -> bytes:
    p, q, g, y = odd_modulus(2048), odd_modulus(256), 2, odd_modulus(2047)
    return spki(seq(oid("1.2.840.10040.4.1"), seq(integer(p), integer(q), integer(g))), integer(y))


def _off_curve() -> bytes:
    point = bytearray(_ec_point(ec.SECP256R1()))
    point[-1] ^= 1
    return spki(P256_ALG, bytes(point))


def _pss() -> bytes:
    numbers = rsa_key(2048).public_key().public_numbers()
    return rsa_spki(numbers.n, numbers.e, seq(oid("1.2.840.113549.1.1.10")))


def _pss_with_parameters() -> bytes:
    numbers = rsa_key(2048).public_key().public_numbers()
    sha256 = seq(oid("2.16.840.1.101.3.4.2.1"), tlv(0x05, b""))
    params = seq(tlv(0xA0, sha256), tlv(0xA1, seq(oid("1.2.840.113549.1.1.8"), sha256)), tlv(0xA2, integer(32)))
    return rsa_spki(numbers.n, numbers.e, seq(oid("1.2.840.113549.1.1.10"), params))


WS_06A = {
    "sm2-curve": (lambda: spki(seq(oid(EC_PUBLIC_KEY), oid("1.2.156.10197.1.301")), _ec_point(ec.SECP256R1())), "SM2"),
    "sm2-algorithm": (
        lambda: spki(seq(oid("1.2.156.10197.1.301.1"), oid("1.2.156.10197.1.301")), _ec_point(ec.SECP256R1())),
        "SM2",
    ),
    "secp256k1-generated": (lambda: der(ec.generate_private_key(ec.SECP256K1()).public_key()), "secp256k1"),
    "secp256k1-by-hand": (lambda: spki(seq(oid(EC_PUBLIC_KEY), oid("1.3.132.0.10")), b"\x04" + bytes(64)), "secp256k1"),
    "brainpoolP256r1": (lambda: der(ec.generate_private_key(ec.BrainpoolP256R1()).public_key()), "brainpool"),
    "brainpoolP384r1": (lambda: der(ec.generate_private_key(ec.BrainpoolP384R1()).public_key()), "brainpool"),
    "brainpool-by-hand": (
        lambda: spki(seq(oid(EC_PUBLIC_KEY), oid("1.3.36.3.3.2.8.1.1.13")), b"\x04" + bytes(128)),
        "brainpool",
    ),
    "explicit-p256": (_explicit_p256, "explicit EC curve parameters"),
    "ec-implicit-null": (
        lambda: spki(seq(oid(EC_PUBLIC_KEY), tlv(0x05, b"")), _ec_point(ec.SECP256R1())),
        "namedCurve",
    ),
    "ec-no-parameters": (lambda: spki(seq(oid(EC_PUBLIC_KEY)), _ec_point(ec.SECP256R1())), "namedCurve"),
    "ed25519": (lambda: der(ed25519.Ed25519PrivateKey.generate().public_key()), "Ed25519"),
    "ed448": (lambda: der(ed448.Ed448PrivateKey.generate().public_key()), "Ed448"),
    "x25519": (lambda: der(x25519.X25519PrivateKey.generate().public_key()), "X25519"),
    "x448": (lambda: der(x448.X448PrivateKey.generate().public_key()), "X448"),
    "dsa-generated": (lambda: der(dsa.generate_private_key(1024).public_key()), "DSA"),  # noqa: S505 (meant to fail)
    "dsa-by-hand": (_dsa_by_hand, "DSA"),
    "rsa-pss": (_pss, "id-RSASSA-PSS"),
    "rsa-pss-with-parameters": (_pss_with_parameters, "id-RSASSA-PSS"),
    "rsa-missing-null": (
        lambda: rsa_spki(rsa_key(2048).public_key().public_numbers().n, 65537, seq(oid("1.2.840.113549.1.1.1"))),
        r"BR 7\.1\.3\.1\.1: rsaEncryption AlgorithmIdentifier must be exactly 300d06092a864886f70d0101010500",
    ),
    "point-not-on-curve": (_off_curve, r"BR 6\.1\.5: the EC point is not on P-256"),
    "point-at-infinity": (lambda: spki(P256_ALG, b"\x00"), "point at infinity"),
    "compressed-point": (lambda: spki(P256_ALG, b"\x02" + _ec_point(ec.SECP256R1())[1:33]), "compressed"),
    "hybrid-point": (lambda: spki(P256_ALG, b"\x06" + _ec_point(ec.SECP256R1())[1:]), r"RFC 5480 §2\.2"),
    "p256-point-with-p384-length": (lambda: spki(P256_ALG, _ec_point(ec.SECP384R1())), r"RFC 5480 §2\.2"),
    "coordinate-above-field-prime": (lambda: spki(P256_ALG, b"\x04" + b"\xff" * 64), "field prime"),
    "unknown-algorithm": (lambda: spki(seq(oid("1.2.3.4")), b"\x00"), r"algorithm 1\.2\.3\.4 is not permitted"),
    "trailing-bytes": (lambda: der(ec.generate_private_key(ec.SECP256R1()).public_key()) + b"\x00", "trailing"),
    "unused-bits": (lambda: seq(P256_ALG, tlv(0x03, b"\x01" + _ec_point(ec.SECP256R1()))), "unused bits"),
    "not-der-indefinite": (lambda: b"\x30\x80" + P256_ALG + b"\x00\x00", "indefinite"),
    "not-der-long-length": (
        lambda: bytes([0x30, 0x81, 0x59]) + P256_ALG + tlv(0x03, b"\x00" + _ec_point(ec.SECP256R1())),
        "long-form length used for a short length",
    ),
    "empty": (lambda: b"", "truncated"),
}


@pytest.mark.parametrize("case", sorted(WS_06A))
def test_ws06a_matrix_refused_with_rule_named(case: str) -> None:
    build, match = WS_06A[case]
    message = str(refused(build(), match))
    assert any(rule in message for rule in ("BR ", "RFC ", "X.690", "Candor policy")), message


@pytest.mark.parametrize("bits", [1024, 2040, 2047, 2049, 3073, 8200])
def test_rsa_sizes_refused(bits: int) -> None:
    if bits % 8:
        match = rf"BR 6\.1\.5: RSA modulus of {bits} bits is not a multiple of 8"
    elif bits < 2048:
        match = rf"BR 6\.1\.5: RSA modulus of {bits} bits is below the minimum of 2048"
    else:
        match = "Candor policy: RSA modulus of 8200 bits exceeds the maximum of 8192"
    refused(rsa_spki(odd_modulus(bits), 65537), match)


@pytest.mark.parametrize(
    ("e", "match"),
    [
        (1, r"BR 6\.1\.6: RSA public exponent 1 is below 3"),
        (2, r"BR 6\.1\.6: RSA public exponent 2 is even"),
        (65536, r"BR 6\.1\.6: RSA public exponent 65536 is even"),
        (3, r"BR 6\.1\.6: RSA public exponent 3 is outside 2\^16\+1 \.\. 2\^256-1"),
        (65535, "outside"),
        (2**256 + 1, "exponent of 257 bits is outside"),
    ],
)
def test_rsa_exponents_refused(e: int, match: str) -> None:
    refused(rsa_spki(rsa_key(2048).public_key().public_numbers().n, e), match)


def test_rsa_exponent_limits_accepted() -> None:
    n = rsa_key(2048).public_key().public_numbers().n
    for e in (65537, 2**256 - 1):
        assert check_subscriber_key(rsa_spki(n, e)).algorithm == "rsa"


def test_non_minimal_and_negative_integers_refused() -> None:
    n = rsa_key(2048).public_key().public_numbers().n
    padded = tlv(0x02, b"\x00" + integer(n)[4:])
    refused(spki(RSA_ALGORITHM_IDENTIFIER, seq(padded, integer(65537))), "not minimally encoded")
    negative = tlv(0x02, b"\x80" + n.to_bytes(256, "big")[1:])
    refused(spki(RSA_ALGORITHM_IDENTIFIER, seq(negative, integer(65537))), "negative")


def test_small_factor_refused() -> None:
    while True:
        n = 3 * (RNG.getrandbits(2047) | 1)
        if n.bit_length() == 2048:
            break
    refused(rsa_spki(n, 65537), r"BR 6\.1\.6: RSA modulus has the small prime factor 3")
    refused(rsa_spki(odd_modulus(2048) - 1, 65537), "small prime factor 2")


def test_prime_power_refused() -> None:
    low, high = 1 << 683, 1 << 684
    while True:  # p**3 with exactly 2048 bits: Fermat's method does not find it, the prime-power test does
        p = next_prime(RNG.randrange(low // 2, high // 2))
        if (p**3).bit_length() == 2048:
            break
    assert fermat_factor(p**3) is None and is_perfect_power(p**3)
    refused(rsa_spki(p**3, 65537), r"BR 6\.1\.6: RSA modulus is a perfect power")


def test_fermat_weak_key_refused() -> None:
    p = random_prime(1024)
    q = next_prime(p + 2 + RNG.getrandbits(400))  # |p - q| far below n**(1/4): Fermat finds it at once
    assert fermat_factor(p * q) == (p, q)
    refused(rsa_spki(p * q, 65537), r"BR 6\.1\.1\.3\(5\)\(3\): .*Fermat")


def _roca_prime(bits: int) -> int:
    """p = k*M + (65537^a mod M), M the product of the ROCA detector primes, as Infineon RSALib made them."""
    m = prod(ROCA_PRIMES)
    while True:
        r = pow(65537, RNG.randrange(1, 2**64), m)
        k = RNG.randrange((3 << (bits - 2)) // m, (1 << bits) // m)
        p = k * m + r
        if p.bit_length() == bits and p >> (bits - 2) == 3 and is_probable_prime(p):
            return p


def test_roca_modulus_refused() -> None:
    n = _roca_prime(1024) * _roca_prime(1024)
    assert n.bit_length() == 2048 and has_roca_fingerprint(n)
    refused(rsa_spki(n, 65537), r"BR 6\.1\.1\.3\(5\)\(2\): RSA modulus has the ROCA fingerprint")


def test_roca_masks_match_published_detector() -> None:
    from candor.policy.weak_keys import _ROCA_MASKS

    assert len(ROCA_PRIMES) == 38 and ROCA_PRIMES[-1] == 167
    assert [mask for _, mask in _ROCA_MASKS[:7]] == [6, 30, 126, 1026, 5658, 107286, 199410]


def test_fifty_random_keys_have_no_roca_fingerprint() -> None:
    for _ in range(50):
        assert not has_roca_fingerprint(rsa.generate_private_key(65537, 2048).public_key().public_numbers().n)


def test_blocked_key_refused_and_lookup_gets_the_spki_hash() -> None:
    key = der(ec.generate_private_key(ec.SECP256R1()).public_key())
    asked: list[str] = []

    def blocked(digest: str) -> bool:
        asked.append(digest)
        return True

    with pytest.raises(CandorError, match=r"BR 6\.1\.1\.3\(4\)/\(5\): .*blocked-key list"):
        check_subscriber_key(key, is_blocked=blocked)
    assert asked == [hashlib.sha256(key).hexdigest()]


# --- WS-06b / BR-12: accepted keys, byte-exact encodings -------------------------------------------------


@pytest.mark.parametrize(
    ("curve", "name", "size", "alg_hex"),
    [
        (ec.SECP256R1(), "P-256", 256, "301306072a8648ce3d020106082a8648ce3d030107"),
        (ec.SECP384R1(), "P-384", 384, "301006072a8648ce3d020106052b81040022"),
        (ec.SECP521R1(), "P-521", 521, "301006072a8648ce3d020106052b81040023"),
    ],
)
def test_ecdsa_keys_accepted(curve: ec.EllipticCurve, name: str, size: int, alg_hex: str) -> None:
    public_key = ec.generate_private_key(curve).public_key()
    encoded = der(public_key)
    assert alg_hex in encoded.hex()[:60] and EC_ALGORITHM_IDENTIFIERS[bytes.fromhex(alg_hex)] == name
    accepted = check_subscriber_key(encoded)
    assert (accepted.algorithm, accepted.curve, accepted.size_bits) == ("ecdsa", name, size)
    assert accepted.spki_sha256 == hashlib.sha256(encoded).hexdigest()
    assert accepted.public_key.public_numbers() == public_key.public_numbers()


@pytest.mark.parametrize("bits", [2048, 3072, 4096])
def test_rsa_keys_accepted(bits: int) -> None:
    public_key = rsa_key(bits).public_key()
    encoded = der(public_key)
    assert encoded[4:19] == bytes.fromhex("300d06092a864886f70d0101010500") == RSA_ALGORITHM_IDENTIFIER
    accepted = check_subscriber_key(encoded)
    assert (accepted.algorithm, accepted.curve, accepted.size_bits) == ("rsa", None, bits)
    assert accepted.public_key.public_numbers() == public_key.public_numbers()
    assert accepted.spki_sha256 == hashlib.sha256(encoded).hexdigest()


def test_hand_built_spki_equals_library_encoding() -> None:
    numbers = rsa_key(2048).public_key().public_numbers()
    assert rsa_spki(numbers.n, numbers.e) == der(rsa_key(2048).public_key())
