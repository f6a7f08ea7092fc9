"""SCT verification (RFC 6962 3.2) over a precert_entry or an x509_entry, with ECDSA P-256 and RSA keys (2.1.4),
and the SCT and SCT-list encodings (3.3), checked against cryptography's own SCT parser."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from ct_pki import NOW, Pki, certificate, leaf_builder, make_pki, precertificate
from submit_support import SigningKey, b64, sign_sct, spki

from candor.ct.log import tls
from candor.ct.submit.loglist import LogInfo, LogKind, LogState
from candor.ct.submit.sct import (
    Sct,
    SctError,
    embedded_scts,
    parse_sct_list,
    parse_sct_response,
    parse_serialized_sct,
    precert_entry,
    sct_list,
    verify_sct,
    x509_entry,
)
from candor.profiles.der import encode_octet_string

PKI: Pki = make_pki()
EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())


def info(key: SigningKey, *, kind: LogKind = LogKind.RFC6962, operator: str = "Op") -> LogInfo:
    der = spki(key)
    return LogInfo(operator, f"log {hashlib.sha256(der).hexdigest()[:8]}", hashlib.sha256(der).digest(), der,
                   "https://log.example/", 86400, LogState.USABLE, NOW, kind)  # fmt: skip


def precert(serial: int = 1) -> x509.Certificate:
    return x509.load_der_x509_certificate(precertificate(PKI.issuer, serial))


def json_answer(sct: Sct, **changes: object) -> bytes:
    document: dict[str, object] = {
        "sct_version": sct.version, "id": b64(sct.log_id), "timestamp": sct.timestamp,
        "extensions": b64(sct.extensions), "signature": b64(sct.digitally_signed()),
    }  # fmt: skip
    document.update(changes)
    return json.dumps(document).encode()


@pytest.mark.parametrize("key", [EC_KEY, RSA_KEY], ids=["ecdsa-p256", "rsa-2048"])
def test_a_good_precertificate_sct_verifies(key: SigningKey) -> None:
    entry = precert_entry(precert(), PKI.issuer.certificate)
    assert entry.issuer_key_hash == PKI.issuer.spki_sha256  # RFC 6962 3.2: SHA-256 of the issuer's SPKI
    sct = parse_sct_response(json_answer(sign_sct(key, entry, NOW)))
    verified = verify_sct(sct, info(key), entry, now=NOW)
    assert verified.sct == sct and verified.log.log_id == sct.log_id


def test_the_precertificate_tbs_is_the_one_without_the_poison() -> None:
    """The log signs the TBS without the poison: the same bytes as the final certificate's TBS (3.2)."""
    issued = x509.load_der_x509_certificate(certificate(PKI.issuer, 2))  # the same fields, without the poison
    pre = precert(2)
    entry = precert_entry(pre, PKI.issuer.certificate)
    assert entry.tbs_certificate == issued.tbs_certificate_bytes != pre.tbs_certificate_bytes
    sct = sign_sct(EC_KEY, entry, NOW)
    final_entry = tls.SignedEntry(tls.EntryType.PRECERT, issuer_key_hash=entry.issuer_key_hash,
                                  tbs_certificate=issued.tbs_certificate_bytes)  # fmt: skip
    verify_sct(sct, info(EC_KEY), final_entry, now=NOW)


def test_a_tampered_signature_is_rejected() -> None:
    entry = precert_entry(precert(), PKI.issuer.certificate)
    sct = sign_sct(EC_KEY, entry, NOW)
    signature = bytearray(sct.signature)
    signature[-1] ^= 0x01
    tampered = Sct(**{**sct.__dict__, "signature": bytes(signature)})
    with pytest.raises(SctError, match="does not verify"):
        verify_sct(tampered, info(EC_KEY), entry, now=NOW)


def test_an_sct_for_another_tbs_is_rejected() -> None:
    entry = precert_entry(precert(3), PKI.issuer.certificate)
    sct = sign_sct(RSA_KEY, entry, NOW)
    with pytest.raises(SctError, match="does not verify"):
        verify_sct(sct, info(RSA_KEY), precert_entry(precert(4), PKI.issuer.certificate), now=NOW)
    with pytest.raises(SctError, match="does not verify"):  # same TBS, another issuer key: issuer_key_hash differs
        verify_sct(sct, info(RSA_KEY), precert_entry(precert(3), PKI.stranger.certificate), now=NOW)
    with pytest.raises(SctError, match="does not verify"):  # a precert SCT is not an x509_entry SCT
        verify_sct(sct, info(RSA_KEY), x509_entry(precert(3)), now=NOW)


def test_a_signature_by_another_key_is_rejected() -> None:
    entry = precert_entry(precert(), PKI.issuer.certificate)
    forged = Sct(**{**sign_sct(OTHER_KEY, entry, NOW).__dict__, "log_id": info(EC_KEY).log_id})
    with pytest.raises(SctError, match="does not verify"):
        verify_sct(forged, info(EC_KEY), entry, now=NOW)
    with pytest.raises(SctError, match="log ID is not this log's"):
        verify_sct(sign_sct(OTHER_KEY, entry, NOW), info(EC_KEY), entry, now=NOW)
    rsa_claimed = Sct(**{**sign_sct(RSA_KEY, entry, NOW).__dict__, "log_id": info(EC_KEY).log_id})
    with pytest.raises(SctError, match="does not match the log's key"):
        verify_sct(rsa_claimed, info(EC_KEY), entry, now=NOW)


def test_a_timestamp_in_the_future_beyond_the_skew_is_rejected() -> None:
    entry = precert_entry(precert(), PKI.issuer.certificate)
    ahead = sign_sct(EC_KEY, entry, NOW + timedelta(seconds=11))
    with pytest.raises(SctError, match="in the future"):
        verify_sct(ahead, info(EC_KEY), entry, now=NOW)
    verify_sct(ahead, info(EC_KEY), entry, now=NOW, max_skew=timedelta(seconds=12))
    verify_sct(sign_sct(EC_KEY, entry, NOW + timedelta(seconds=9)), info(EC_KEY), entry, now=NOW)


def test_only_version_1_and_sha256_are_accepted() -> None:
    entry = precert_entry(precert(), PKI.issuer.certificate)
    sct = sign_sct(EC_KEY, entry, NOW)
    with pytest.raises(SctError, match="not v1"):
        parse_sct_response(json_answer(sct, sct_version=1))
    with pytest.raises(SctError, match="not v1"):
        verify_sct(Sct(**{**sct.__dict__, "version": 1}), info(EC_KEY), entry, now=NOW)
    with pytest.raises(SctError, match="not SHA-256"):
        verify_sct(Sct(**{**sct.__dict__, "hash_algorithm": 2}), info(EC_KEY), entry, now=NOW)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"id": b64(b"short")}, "32-byte LogID"),
        ({"timestamp": -1}, "uint64"),
        ({"timestamp": "1"}, "uint64"),
        ({"signature": "!!"}, "not valid base64"),
        ({"signature": b64(b"\x04\x03\x00\x09abc")}, "truncated"),
        ({"extensions": None}, "missing"),
    ],
)
def test_malformed_answers_are_rejected(changes: dict[str, object], fragment: str) -> None:
    sct = sign_sct(EC_KEY, precert_entry(precert(), PKI.issuer.certificate), NOW)
    with pytest.raises(SctError, match=fragment):
        parse_sct_response(json_answer(sct, **changes))


def test_static_ct_api_scts_need_their_leaf_index() -> None:
    entry = precert_entry(precert(), PKI.issuer.certificate)
    tiled = info(EC_KEY, kind=LogKind.STATIC_CT_API)
    with pytest.raises(SctError, match="leaf_index"):
        verify_sct(sign_sct(EC_KEY, entry, NOW), tiled, entry, now=NOW)
    verify_sct(sign_sct(EC_KEY, entry, NOW, tls.leaf_index_extension(42)), tiled, entry, now=NOW)


def test_the_sct_list_is_what_cryptography_reads_from_a_certificate() -> None:
    """The list the signer embeds (3.3) parses back with pyca/cryptography's own SCT parser."""
    entry = precert_entry(precert(), PKI.issuer.certificate)
    scts = [sign_sct(EC_KEY, entry, NOW), sign_sct(RSA_KEY, entry, NOW + timedelta(seconds=1), b"\x00\x00\x01x")]
    encoded = sct_list(scts)
    assert parse_sct_list(encoded) == scts
    assert [parse_serialized_sct(s.serialize()) for s in scts] == scts
    extension = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2"),
                                           encode_octet_string(encoded))  # fmt: skip
    final = (leaf_builder(PKI.issuer.name, 9).add_extension(extension, critical=False)
             .sign(PKI.issuer.key, hashes.SHA256()))  # fmt: skip
    parsed = final.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value
    assert [(p.log_id, int(p.timestamp.timestamp() * 1000), p.extension_bytes) for p in parsed] == [
        (s.log_id, s.timestamp, s.extensions) for s in scts
    ]
    assert embedded_scts(final) == scts
    assert embedded_scts(x509.load_der_x509_certificate(certificate(PKI.issuer, 10))) == []
    with pytest.raises(SctError, match="at least one"):
        sct_list([])


def test_base64_log_ids_match_the_key_hash() -> None:
    assert base64.b64decode(b64(info(EC_KEY).log_id)) == hashlib.sha256(spki(EC_KEY)).digest()
