"""Verifying a time-stamp token (or a whole TimeStampResp), for ``candor tsa verify`` and for relying parties.

A token is valid when (RFC 3161 2.4.2, RFC 5652 5.4-5.6, RFC 5816, CSBR 7.1.2.3):

* it is a SignedData over a TSTInfo (eContentType id-ct-TSTInfo) with one SignerInfo, whose signed attributes
  hold content-type id-ct-TSTInfo, the message digest of the TSTInfo, and a signing-certificate(-v2) attribute
  whose first ESSCertID(v2) hashes the signer's certificate (and names its issuer and serial, if given);
* the signature over the signed attributes verifies with that certificate's key;
* that certificate is a compliant Timestamp certificate (extKeyUsage critical with id-kp-timeStamping only,
  :func:`candor.profiles.timestamp_certificate_problems`) valid at genTime, and chains by signature to one of
  the trusted roots through CA certificates valid at genTime;
* its imprint equals the hash of the data, or the digest, when one is given.

Revocation is not checked here: the CRLs of the time-stamping sub-CA say whether a unit was revoked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from pyasn1.codec.der import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1_alt_modules import rfc2634, rfc3161, rfc5035, rfc5652

from candor.errors import CandorError, ErrorKind
from candor.profiles import timestamp_certificate_problems
from candor.profiles.der import encode
from candor.tsa.asn1 import IMPRINT_ALGORITHMS, HashAlgorithm

MAX_CHAIN = 6
DIRECTORY_NAME = 0xA4  # GeneralName directoryName [4]
_SHA1 = "1.3.14.3.2.26"


@dataclass(frozen=True)
class VerifiedToken:
    serial: int
    gen_time: datetime
    policy: str
    imprint_algorithm: HashAlgorithm
    imprint: bytes
    nonce: int | None
    signer: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # from the signer's issuer to the trusted root


def _fail(reason: str) -> CandorError:
    return CandorError(ErrorKind.INTEGRITY, reason)


def _decode(data: bytes, spec: Any, what: str) -> Any:
    try:
        value, rest = decoder.decode(data, asn1Spec=spec)
    except (PyAsn1Error, ValueError, TypeError) as exc:
        raise _fail(f"{what} is not DER: {type(exc).__name__}") from None
    if rest:
        raise _fail(f"{len(rest)} byte(s) after the {what}")
    return value


def token_from(data: bytes) -> bytes:
    """The token (ContentInfo) in *data*, which is a token or a TimeStampResp; a rejection is refused."""
    try:
        response = _decode(data, rfc3161.TimeStampResp(), "TimeStampResp")
    except CandorError:
        return data  # not a response: a bare token
    status = int(response["status"]["status"])
    if status not in (0, 1):
        strings = response["status"]["statusString"]
        text = "; ".join(str(s) for s in strings) if strings.isValue else ""
        raise _fail(f"the reply is not a token: status {status} (rejection) {text}".strip())
    if not response["timeStampToken"].isValue:
        raise _fail("the reply grants but carries no token")
    return bytes(encoder.encode(response["timeStampToken"]))


def verify_token(
    data: bytes,
    *,
    roots: Sequence[x509.Certificate],
    certificates: Sequence[x509.Certificate] = (),
    message: bytes | None = None,
    digest: bytes | None = None,
) -> VerifiedToken:
    """Verify the token or TimeStampResp *data* (see the module); ``ErrorKind.INTEGRITY`` naming the first failure.
    *certificates* are more certificates to find the signer and its chain in (a token made without certReq
    carries none)."""
    token = token_from(data)
    info = _decode(token, rfc5652.ContentInfo(), "token")
    if info["contentType"] != rfc5652.id_signedData:
        raise _fail("the token is not a SignedData")
    signed = _decode(bytes(info["content"]), rfc5652.SignedData(), "SignedData")
    encap = signed["encapContentInfo"]
    if encap["eContentType"] != rfc3161.id_ct_TSTInfo or not encap["eContent"].isValue:
        raise _fail("the SignedData does not hold a TSTInfo")
    tst_der = bytes(encap["eContent"])
    tst = _decode(tst_der, rfc3161.TSTInfo(), "TSTInfo")
    if len(signed["signerInfos"]) != 1:
        raise _fail("a token has exactly one SignerInfo")
    signer_info = signed["signerInfos"][0]
    embedded = [
        x509.load_der_x509_certificate(encoder.encode(choice["certificate"]))
        for choice in (signed["certificates"] if signed["certificates"].isValue else [])
        if choice.getName() == "certificate"
    ]
    pool = [*embedded, *certificates]
    signer = _signer_certificate(signer_info, pool)
    digest_algorithm = _hash(str(signer_info["digestAlgorithm"]["algorithm"]))
    attributes = _attributes(signer_info)
    if attributes.get(str(rfc5652.id_contentType)) != encoder.encode(rfc3161.id_ct_TSTInfo):
        raise _fail("the content-type attribute is not id-ct-TSTInfo")
    hasher = hashes.Hash(digest_algorithm.new())
    hasher.update(tst_der)
    if attributes.get(str(rfc5652.id_messageDigest)) != encoder.encode(rfc5652.MessageDigest(hasher.finalize())):
        raise _fail("the message-digest attribute does not match the TSTInfo")
    _check_signing_certificate(attributes, signer)
    signed_attributes = bytearray(encoder.encode(signer_info["signedAttrs"]))
    signed_attributes[0] = 0x31  # RFC 5652 5.4: the signature is over the SET OF, not the [0] IMPLICIT
    _check_signature(signer, bytes(signed_attributes), bytes(signer_info["signature"]), digest_algorithm)
    try:
        gen_time = tst["genTime"].asDateTime
    except (PyAsn1Error, ValueError) as exc:
        raise _fail(f"the token's genTime cannot be read ({exc})") from None
    if gen_time.tzinfo is None or gen_time.utcoffset() is None:
        raise _fail("the token's genTime is not UTC (RFC 3161 2.4.2: GeneralizedTime in Zulu)")
    problems = timestamp_certificate_problems(signer)
    if problems:
        raise _fail(f"the signer is not a Timestamp certificate: {'; '.join(problems)}")
    chain = _chain(signer, pool, roots, gen_time)
    imprint_algorithm = _hash(str(tst["messageImprint"]["hashAlgorithm"]["algorithm"]))
    imprint = bytes(tst["messageImprint"]["hashedMessage"])
    if message is not None:
        hasher = hashes.Hash(imprint_algorithm.new())
        hasher.update(message)
        digest = hasher.finalize()
    if digest is not None and digest != imprint:
        raise _fail(f"the token's {imprint_algorithm.name} imprint is not the data's")
    nonce = tst["nonce"]
    return VerifiedToken(
        serial=int(tst["serialNumber"]),
        gen_time=gen_time,
        policy=str(tst["policy"]),
        imprint_algorithm=imprint_algorithm,
        imprint=imprint,
        nonce=int(nonce) if nonce.isValue else None,
        signer=signer,
        chain=chain,
    )


def _hash(oid: str) -> HashAlgorithm:
    algorithm = IMPRINT_ALGORITHMS.get(oid)
    if algorithm is None:
        raise _fail(f"hash algorithm {oid} is not accepted (SHA-2 or SHA-3 only)")
    return algorithm


def _attributes(signer_info: Any) -> dict[str, bytes]:
    """Each signed attribute's single value, DER, by type; an attribute given twice or with several values fails."""
    if not signer_info["signedAttrs"].isValue:
        raise _fail("the SignerInfo has no signed attributes")
    found: dict[str, bytes] = {}
    for attribute in signer_info["signedAttrs"]:
        kind = str(attribute["attrType"])
        if kind in found or len(attribute["attrValues"]) != 1:
            raise _fail(f"signed attribute {kind} must appear once with one value (RFC 5652 5.3)")
        found[kind] = bytes(encoder.encode(attribute["attrValues"][0]))
    return found


def _signer_certificate(signer_info: Any, pool: Sequence[x509.Certificate]) -> x509.Certificate:
    sid = signer_info["sid"]
    if sid.getName() == "issuerAndSerialNumber":
        issuer = bytes(encoder.encode(sid["issuerAndSerialNumber"]["issuer"]))
        serial = int(sid["issuerAndSerialNumber"]["serialNumber"])
        matches = [c for c in pool if c.issuer.public_bytes() == issuer and c.serial_number == serial]
    else:
        key_id = bytes(sid["subjectKeyIdentifier"])
        matches = [c for c in pool if _ski(c) == key_id]
    if not matches:
        raise _fail("the signer's certificate is neither in the token nor known (pass it, or use certReq)")
    return matches[0]


def _ski(certificate: x509.Certificate) -> bytes | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def _check_signing_certificate(attributes: dict[str, bytes], signer: x509.Certificate) -> None:
    """RFC 5816 / RFC 5035: the first ESSCertIDv2 (or RFC 2634 ESSCertID) identifies the signer's certificate."""
    der = signer.public_bytes(Encoding.DER)
    v2 = attributes.get(str(rfc5035.id_aa_signingCertificateV2))
    if v2 is not None:
        certs = _decode(v2, rfc5035.SigningCertificateV2(), "signing-certificate-v2")["certs"]
        if not len(certs):
            raise _fail("the signing-certificate-v2 attribute names no certificate")
        first = certs[0]
        algorithm = _hash(str(first["hashAlgorithm"]["algorithm"]))
    elif (v1 := attributes.get(str(rfc2634.id_aa_signingCertificate))) is not None:
        certs = _decode(v1, rfc2634.SigningCertificate(), "signing-certificate")["certs"]
        if not len(certs):
            raise _fail("the signing-certificate attribute names no certificate")
        first = certs[0]
        algorithm = HashAlgorithm("SHA-1", _SHA1, 20, hashes.SHA1)
    else:
        raise _fail("no signing-certificate(-v2) attribute binds the signer's certificate (RFC 3161 2.4.2, RFC 5816)")
    hasher = hashes.Hash(algorithm.new())
    hasher.update(der)
    if bytes(first["certHash"]) != hasher.finalize():
        raise _fail("the ESSCertID does not hash the signer's certificate")
    issuer_serial = first["issuerSerial"]
    if issuer_serial.isValue:
        names = [
            bytes(encoder.encode(n["directoryName"])) for n in issuer_serial["issuer"] if n.getName() == "directoryName"
        ]
        directory_name = encode(DIRECTORY_NAME, signer.issuer.public_bytes())  # [4] EXPLICIT Name
        if directory_name not in names or int(issuer_serial["serialNumber"]) != signer.serial_number:
            raise _fail("the ESSCertID's issuerSerial is not the signer certificate's")


def _check_signature(certificate: x509.Certificate, data: bytes, signature: bytes, digest: HashAlgorithm) -> None:
    key = certificate.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(digest.new()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), digest.new())
        else:
            raise _fail("the signer's key is neither RSA nor ECDSA")
    except InvalidSignature:
        raise _fail("the signature does not verify with the signer's certificate") from None


def _chain(
    certificate: x509.Certificate, pool: Sequence[x509.Certificate], roots: Sequence[x509.Certificate], at: datetime
) -> tuple[x509.Certificate, ...]:
    """The path from *certificate*'s issuer to a trusted root, each link checked by signature and valid *at*."""
    chain: list[x509.Certificate] = []
    current = certificate
    for _ in range(MAX_CHAIN):
        if not current.not_valid_before_utc <= at <= current.not_valid_after_utc:
            raise _fail(f"{current.subject.rfc4514_string()} was not valid at genTime {at.isoformat()}")
        for root in roots:
            if root.subject == current.issuer and _issued_by(current, root):
                if not root.not_valid_before_utc <= at <= root.not_valid_after_utc:
                    raise _fail(f"the root was not valid at genTime {at.isoformat()}")
                return (*chain, root)
        candidates = (c for c in pool if c.subject == current.issuer and c != current)
        issuer = next((c for c in candidates if _issued_by(current, c)), None)
        if issuer is None:
            raise _fail(f"no trusted path from {certificate.subject.rfc4514_string()} to a trusted root")
        basic = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value if _has_basic(issuer) else None
        if basic is None or not basic.ca:
            raise _fail(f"{issuer.subject.rfc4514_string()} is not a CA")
        chain.append(issuer)
        current = issuer
    raise _fail("the certificate chain is too long")


def _has_basic(certificate: x509.Certificate) -> bool:
    try:
        certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    return True


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
