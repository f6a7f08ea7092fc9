"""Subscriber key policy: which SubjectPublicKeyInfo a certificate may carry (BR 6.1.1.3, 6.1.5, 6.1.6, 7.1.3.1).

The SPKI is taken apart by a strict DER reader *before* cryptography sees it, because BR 7.1.3.1 fixes the
AlgorithmIdentifier byte for byte: equivalent encodings (absent NULL, explicit curve parameters, RSA-PSS)
are refused, not normalised. Only RSA (2048-8192 bits, multiple of 8) and ECDSA on P-256/P-384/P-521 pass.

EC points must be uncompressed (0x04 || X || Y). BR 7.1.3.1.2 does not forbid the compressed form, but
RFC 5480 §2.2 only requires implementations to support the uncompressed one, so a compressed key risks
certificates that relying parties cannot use. Hybrid forms (0x06/0x07) are refused by RFC 5480 itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from candor.errors import CandorError, ErrorKind
from candor.policy import _der, weak_keys

__all__ = ["EC_ALGORITHM_IDENTIFIERS", "RSA_ALGORITHM_IDENTIFIER", "AcceptedKey", "check_subscriber_key"]

# BR 7.1.3.1.1 / 7.1.3.1.2: the only permitted encodings.
RSA_ALGORITHM_IDENTIFIER = bytes.fromhex("300d06092a864886f70d0101010500")
EC_ALGORITHM_IDENTIFIERS: dict[bytes, str] = {
    bytes.fromhex("301306072a8648ce3d020106082a8648ce3d030107"): "P-256",
    bytes.fromhex("301006072a8648ce3d020106052b81040022"): "P-384",
    bytes.fromhex("301006072a8648ce3d020106052b81040023"): "P-521",
}

RSA_MIN_BITS = 2048  # BR 6.1.5
RSA_MAX_BITS = 8192  # Candor policy: bounds the cost of the checks below (BR 6.1.1.3(5)(1) uses the same limit)
RSA_MIN_EXPONENT = 2**16 + 1  # BR 6.1.6 SHOULD range, enforced by Candor
RSA_MAX_EXPONENT = 2**256 - 1


@dataclass(frozen=True)
class _Curve:
    name: str
    p: int
    b: int  # a = -3 on all three NIST curves
    coordinate_bytes: int
    cryptography_curve: ec.EllipticCurve


_CURVES = {
    "P-256": _Curve(
        "P-256",
        2**256 - 2**224 + 2**192 + 2**96 - 1,
        0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
        32,
        ec.SECP256R1(),
    ),
    "P-384": _Curve(
        "P-384",
        2**384 - 2**128 - 2**96 + 2**32 - 1,
        0xB3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875AC656398D8A2ED19D2A85C8EDD3EC2AEF,
        48,
        ec.SECP384R1(),
    ),
    "P-521": _Curve(
        "P-521",
        2**521 - 1,
        0x0051953EB9618E1C9A1F929A21A0B68540EEA2DA725B99B315F3B8B489918EF109E156193951EC7E937B1652C0BD3BB1BF073573DF883D2C34F1EF451FD46B503F00,
        66,
        ec.SECP521R1(),
    ),
}

# Algorithms and curves refused by name, so the operator sees what was sent (BR 6.1.5: "No other algorithms").
_KNOWN_ALGORITHMS = {
    "1.2.840.113549.1.1.10": "id-RSASSA-PSS (BR 7.1.3.1.1 requires rsaEncryption for RSA keys)",
    "1.2.840.10040.4.1": "DSA",
    "1.3.101.110": "X25519",
    "1.3.101.111": "X448",
    "1.3.101.112": "Ed25519",
    "1.3.101.113": "Ed448",
    "1.2.156.10197.1.301": "SM2",
    "1.2.156.10197.1.301.1": "SM2 signature (sm2sign)",
    "1.2.840.10046.2.1": "Diffie-Hellman",
    "1.2.840.113549.1.3.1": "PKCS#3 Diffie-Hellman",
    "1.3.132.1.12": "id-ecDH",
    "1.3.132.1.13": "id-ecMQV",
}
_KNOWN_CURVES = {
    "1.2.156.10197.1.301": "SM2 (sm2p256v1)",
    "1.3.132.0.10": "secp256k1",
    "1.3.132.0.33": "P-224",
    "1.2.840.10045.3.1.1": "P-192",
}
_RSA_OID, _EC_OID = "1.2.840.113549.1.1.1", "1.2.840.10045.2.1"


@dataclass(frozen=True)
class AcceptedKey:
    algorithm: Literal["rsa", "ecdsa"]
    size_bits: int  # RSA modulus bits, or the curve's field size (256, 384, 521)
    curve: str | None  # "P-256", "P-384", "P-521" (BR 6.1.5 naming); None for RSA
    spki_sha256: str  # lower-case hex SHA-256 of the whole SubjectPublicKeyInfo DER
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey


def _refuse(message: str) -> CandorError:
    return CandorError(ErrorKind.BAD_PUBLIC_KEY, message)


def _describe_algorithm(algorithm: bytes) -> str:
    """Why a non-permitted AlgorithmIdentifier was refused, naming the rule."""
    elements = _der.split_sequence(_der.read_single(algorithm, _der.SEQUENCE, "AlgorithmIdentifier"))
    if not elements or elements[0][0] != _der.OID:
        return "X.690 DER: AlgorithmIdentifier does not start with an OBJECT IDENTIFIER"
    oid = _der.decode_oid(elements[0][1])
    parameters = elements[1:]
    if oid == _RSA_OID:
        return f"BR 7.1.3.1.1: rsaEncryption AlgorithmIdentifier must be exactly {RSA_ALGORITHM_IDENTIFIER.hex()}"
    if oid in _KNOWN_ALGORITHMS:
        return f"BR 6.1.5 / 7.1.3.1: {_KNOWN_ALGORITHMS[oid]} keys are not permitted (RSA or ECDSA P-256/384/521)"
    if oid != _EC_OID:
        return f"BR 6.1.5 / 7.1.3.1: public key algorithm {oid} is not permitted (RSA or ECDSA P-256/384/521)"
    if len(parameters) != 1:
        return "BR 7.1.3.1.2: id-ecPublicKey parameters must be exactly one namedCurve"
    tag, content, _ = parameters[0]
    if tag == _der.SEQUENCE:
        return "BR 7.1.3.1.2: explicit EC curve parameters are not permitted (namedCurve only)"
    if tag != _der.OID:
        return "BR 7.1.3.1.2: id-ecPublicKey parameters must be a namedCurve OBJECT IDENTIFIER"
    curve = _der.decode_oid(content)
    brainpool = curve.startswith("1.3.36.3.3.2.8.1.1.")
    named = f"brainpool ({curve})" if brainpool else _KNOWN_CURVES.get(curve, curve)
    return f"BR 6.1.5 / 7.1.3.1.2: curve {named} is not permitted (P-256, P-384 or P-521 only)"


def _check_rsa(key_bytes: bytes) -> tuple[int, int]:
    elements = _der.split_sequence(_der.read_single(key_bytes, _der.SEQUENCE, "RSAPublicKey"))
    if len(elements) != 2 or any(tag != _der.INTEGER for tag, _, _ in elements):
        raise _refuse("RFC 8017 §A.1.1: RSAPublicKey must be SEQUENCE { modulus INTEGER, publicExponent INTEGER }")
    n = _der.positive_integer(elements[0][1], "RSA modulus")
    e = _der.positive_integer(elements[1][1], "RSA public exponent")
    bits = n.bit_length()
    # BR 6.1.5: at least 2048 bits and divisible by 8; Candor caps the size at 8192.
    if bits % 8:
        raise _refuse(f"BR 6.1.5: RSA modulus of {bits} bits is not a multiple of 8")
    if bits < RSA_MIN_BITS:
        raise _refuse(f"BR 6.1.5: RSA modulus of {bits} bits is below the minimum of {RSA_MIN_BITS}")
    if bits > RSA_MAX_BITS:
        raise _refuse(f"Candor policy: RSA modulus of {bits} bits exceeds the maximum of {RSA_MAX_BITS}")
    # BR 6.1.6: e odd and >= 3 (MUST); 2^16+1 .. 2^256-1 (SHOULD, enforced here).
    if e % 2 == 0:
        raise _refuse(f"BR 6.1.6: RSA public exponent {e} is even")
    if e < 3:
        raise _refuse(f"BR 6.1.6: RSA public exponent {e} is below 3")
    if not RSA_MIN_EXPONENT <= e <= RSA_MAX_EXPONENT:
        shown = e if e < 2**64 else f"of {e.bit_length()} bits"
        raise _refuse(f"BR 6.1.6: RSA public exponent {shown} is outside 2^16+1 .. 2^256-1")
    # BR 6.1.6 (SHOULD, enforced): odd, no factor below 752, not a prime power. An even modulus has factor 2.
    factor = weak_keys.small_prime_factor(n)
    if factor is not None:
        raise _refuse(f"BR 6.1.6: RSA modulus has the small prime factor {factor} (none below 752 allowed)")
    if weak_keys.is_perfect_power(n):
        raise _refuse("BR 6.1.6: RSA modulus is a perfect power")
    # BR 6.1.1.3(5)(3): close primes, factorable by Fermat's method within 100 rounds.
    if weak_keys.fermat_factor(n) is not None:
        raise _refuse("BR 6.1.1.3(5)(3): RSA modulus is factorable with Fermat's method (close primes)")
    # BR 6.1.1.3(5)(2): ROCA (Infineon RSALib, CVE-2017-15361).
    if weak_keys.has_roca_fingerprint(n):
        raise _refuse("BR 6.1.1.3(5)(2): RSA modulus has the ROCA fingerprint (CVE-2017-15361)")
    return n, e


def _check_ec_point(curve: _Curve, point: bytes) -> tuple[int, int]:
    """Partial public-key validation (NIST SP 800-56A §5.6.2.3.3, per BR 6.1.6); cofactor 1 makes it full."""
    if point == b"\x00":
        raise _refuse(f"BR 6.1.5: the point at infinity is not a valid {curve.name} public key")
    if point[:1] in (b"\x02", b"\x03"):
        raise _refuse("RFC 5480 §2.2 / Candor policy: compressed EC points are not accepted; send 0x04 || X || Y")
    size = curve.coordinate_bytes
    if point[:1] != b"\x04" or len(point) != 1 + 2 * size:
        raise _refuse(f"RFC 5480 §2.2: {curve.name} public key must be 0x04 followed by two {size}-byte coordinates")
    x, y = int.from_bytes(point[1 : 1 + size], "big"), int.from_bytes(point[1 + size :], "big")
    p = curve.p
    if x >= p or y >= p:
        raise _refuse(f"BR 6.1.5 / 6.1.6: {curve.name} point coordinate is not below the field prime")
    if (y * y - (x * x * x - 3 * x + curve.b)) % p:
        raise _refuse(f"BR 6.1.5: the EC point is not on {curve.name}")
    return x, y


def _load(spki_der: bytes) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_der_public_key(spki_der)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise _refuse(f"RFC 5280 §4.1.2.7: the public key cannot be loaded ({type(exc).__name__})") from None
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise _refuse(f"BR 6.1.5: {type(key).__name__} is not permitted")
    return key


def check_subscriber_key(spki_der: bytes, *, is_blocked: Callable[[str], bool] = lambda _h: False) -> AcceptedKey:
    """Accept a subscriber SubjectPublicKeyInfo (DER) or raise CandorError(POLICY) naming the rule broken.

    *is_blocked* gets the SPKI's SHA-256 (lower-case hex) and says whether the key is on Candor's blocked
    list (reported compromised, BR 6.1.1.3(4); weak-key data sets such as Debian's, 6.1.1.3(5)(1)).
    """
    spki = _der.read_single(bytes(spki_der), _der.SEQUENCE, "SubjectPublicKeyInfo")
    elements = _der.split_sequence(spki)
    if len(elements) != 2 or elements[0][0] != _der.SEQUENCE or elements[1][0] != _der.BIT_STRING:
        raise _refuse("RFC 5280 §4.1: SubjectPublicKeyInfo must be SEQUENCE { AlgorithmIdentifier, BIT STRING }")
    algorithm, bit_string = elements[0][2], elements[1][1]
    if not bit_string or bit_string[0] != 0:
        raise _refuse("RFC 5280 §4.1: subjectPublicKey BIT STRING must have no unused bits")
    key_bytes = bit_string[1:]
    digest = hashlib.sha256(spki_der).hexdigest()

    if algorithm == RSA_ALGORITHM_IDENTIFIER:
        n, e = _check_rsa(key_bytes)
        public_key = _load(spki_der)
        if not isinstance(public_key, rsa.RSAPublicKey) or public_key.public_numbers() != rsa.RSAPublicNumbers(e, n):
            raise _refuse("RFC 8017: the RSA key decoded differently by cryptography")
        accepted = AcceptedKey("rsa", n.bit_length(), None, digest, public_key)
    elif algorithm in EC_ALGORITHM_IDENTIFIERS:
        curve = _CURVES[EC_ALGORITHM_IDENTIFIERS[algorithm]]
        x, y = _check_ec_point(curve, key_bytes)
        public_key = _load(spki_der)
        numbers = ec.EllipticCurvePublicNumbers(x, y, curve.cryptography_curve)
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or public_key.public_numbers() != numbers:
            raise _refuse("SEC 1: the EC key decoded differently by cryptography")
        accepted = AcceptedKey("ecdsa", public_key.curve.key_size, curve.name, digest, public_key)
    else:
        raise _refuse(_describe_algorithm(algorithm))

    if is_blocked(digest):
        raise blocked_key()
    return accepted


def blocked_key() -> CandorError:
    """The refusal of a key on the blocked-key list (for callers that look the SPKI's digest up themselves)."""
    return _refuse("BR 6.1.1.3(4)/(5): this public key is on the blocked-key list (compromised or known weak)")
