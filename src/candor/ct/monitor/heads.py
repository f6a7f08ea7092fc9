"""Checking a signed tree head: the log's signature over the RFC 6962 3.5 TreeHeadSignature input.

A log signs tree heads with ECDSA P-256 or RSA (at least 2048 bits), both with SHA-256 (RFC 6962 2.1.4); the
DigitallySigned struct (RFC 5246 4.7) says which. A head whose signature does not verify with the key of the
log list is not the log's word about anything, and the audit stops there.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from candor.ct.log import tls
from candor.ct.monitor.reader import TreeHead

HASH_SHA256 = 4  # RFC 5246 7.4.1.4.1 HashAlgorithm sha256(4)
SIGNATURE_RSA = 1  # SignatureAlgorithm rsa(1)
SIGNATURE_ECDSA = 3  # SignatureAlgorithm ecdsa(3)


class TreeHeadError(ValueError):
    """The tree head's signature is malformed or is not the log's."""


def verify_tree_head(head: TreeHead, key_der: bytes) -> None:
    """Raise :class:`TreeHeadError` unless *head* is signed by the log whose SubjectPublicKeyInfo is *key_der*
    (RFC 6962 3.5: version v1, signature_type tree_hash, timestamp, tree_size, sha256_root_hash)."""
    data = head.signature
    if len(data) < 4:
        raise TreeHeadError("the tree head signature is not a DigitallySigned struct")
    try:
        signature, end = tls.read_opaque(data, 2, 2)
    except tls.TLSError as exc:
        raise TreeHeadError(f"the tree head signature: {exc}") from None
    if end != len(data) or not signature:
        raise TreeHeadError("the tree head signature is not one DigitallySigned struct")
    if data[0] != HASH_SHA256:
        raise TreeHeadError(f"hash algorithm {data[0]} is not SHA-256 (RFC 6962 2.1.4)")
    signed = tls.sth_signature_input(head.timestamp, head.tree_size, head.root_hash)
    key = load_der_public_key(key_der)
    try:
        if data[1] == SIGNATURE_ECDSA and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed, ec.ECDSA(hashes.SHA256()))
        elif data[1] == SIGNATURE_RSA and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
        else:
            raise TreeHeadError(f"signature algorithm {data[1]} does not match the log's key")
    except InvalidSignature:
        raise TreeHeadError("the tree head signature does not verify with the log's key (RFC 6962 3.5)") from None


__all__ = ["TreeHeadError", "verify_tree_head"]
