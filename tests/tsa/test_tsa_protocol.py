"""RFC 3161 over HTTP (acceptance 3): what a token holds, and each failure case with its PKIFailureInfo, one by one,
against the TSA served on a loopback port. Replies are read with pyasn1, not with Candor's own code."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import func, select
from tsa_support import (
    POLICY,
    QUERY,
    Harness,
    integer,
    message_imprint,
    post,
    read_reply,
    request,
    sha256,
    token_certificates,
    tst_info,
)

from candor.profiles.der import SEQUENCE, encode
from candor.storage.models_tsa import TsaToken

GENERALIZED_TIME = re.compile(r"^\d{14}(\.\d*[1-9])?Z$")  # RFC 3161 2.4.2: no trailing zeros, no bare "."


def _token_count(tsa: Harness) -> int:
    with tsa.db.session() as session:
        return session.scalar(select(func.count()).select_from(TsaToken)) or 0


def test_a_token_echoes_the_imprint_and_nonce_and_names_policy_serial_time_accuracy_and_unit(
    tsa: Harness, url: str
) -> None:
    body = request(nonce=0x00F1_2345_6789_ABCD_EF01)
    before = datetime.now(UTC)
    status, headers, reply_der = post(url, body)
    after = datetime.now(UTC)
    assert status == 200 and headers["content-type"] == "application/timestamp-reply"
    reply = read_reply(reply_der)
    assert reply.status == 0 and reply.token is not None
    tst = tst_info(reply.token)
    assert int(tst["version"]) == 1
    assert str(tst["policy"]) == POLICY
    from pyasn1.codec.der import encoder

    assert encoder.encode(tst["messageImprint"]) == message_imprint(sha256(b"hello, time-stamping authority\n"))
    assert int(tst["nonce"]) == 0x00F1_2345_6789_ABCD_EF01
    serial = int(tst["serialNumber"])
    assert 0 < serial < 2**160
    text = str(tst["genTime"])
    assert GENERALIZED_TIME.match(text), text
    assert before.replace(microsecond=0) <= tst["genTime"].asDateTime <= after
    assert int(tst["accuracy"]["seconds"]) == 1 and int(tst["accuracy"]["millis"]) == 500
    assert not tst["ordering"]  # DEFAULT FALSE
    unit = tsa.tsa.keeper.units.units[0].record.certificate
    assert encoder.encode(tst["tsa"]["directoryName"]) == encode(0xA4, unit.subject.public_bytes())
    # certReq: the unit's certificate and its issuer (the chain without the root)
    assert {c.subject for c in token_certificates(reply.token)} == {unit.subject, tsa.tsa_ca.subject}


def test_the_imprint_is_echoed_byte_for_byte_with_or_without_null_parameters(url: str) -> None:
    for null in (True, False):
        imprint = message_imprint(sha256(b"x"), null_parameters=null)
        body = encode(SEQUENCE, integer(1) + imprint)
        reply = read_reply(post(url, body)[2])
        assert reply.status == 0
        from pyasn1.codec.der import encoder

        assert reply.token is not None
        assert encoder.encode(tst_info(reply.token)["messageImprint"]) == imprint


def test_without_a_nonce_the_token_has_none_and_without_cert_req_no_certificates(url: str) -> None:
    reply = read_reply(post(url, request(nonce=None, cert_req=False))[2])
    assert reply.status == 0 and reply.token is not None
    assert not tst_info(reply.token)["nonce"].isValue
    assert token_certificates(reply.token) == []
    # an explicit certReq FALSE (BER: DER omits the DEFAULT) means the same
    plain = request(nonce=None, cert_req=False)
    explicit = plain[:1] + bytes([plain[1] + 3]) + plain[2:] + b"\x01\x01\x00"
    reply = read_reply(post(url, explicit)[2])
    assert reply.status == 0 and reply.token is not None and token_certificates(reply.token) == []


def test_gen_time_never_has_trailing_zeros_and_serials_differ(url: str) -> None:
    serials = set()
    for _ in range(40):
        tst = tst_info(read_reply(post(url, request())[2]).token or b"")
        assert GENERALIZED_TIME.match(str(tst["genTime"])), str(tst["genTime"])
        serials.add(int(tst["serialNumber"]))
    assert len(serials) == 40


def test_the_tsa_s_own_policy_may_be_requested(url: str) -> None:
    reply = read_reply(post(url, request(policy=POLICY))[2])
    assert reply.status == 0 and reply.token is not None
    assert str(tst_info(reply.token)["policy"]) == POLICY


def _ber_indefinite(der: bytes) -> bytes:
    return b"\x30\x80" + der[2:] + b"\x00\x00"


@pytest.mark.parametrize(
    ("body", "failure"),
    [
        pytest.param(request(algorithm="sha1", digest=bytes(20)), "badAlg", id="sha1-imprint"),
        pytest.param(request(algorithm="md5", digest=bytes(16)), "badAlg", id="md5-imprint"),
        pytest.param(request(algorithm="1.2.3.4.5", digest=bytes(32)), "badAlg", id="unknown-hash"),
        pytest.param(request(digest=bytes(20)), "badDataFormat", id="sha256-imprint-of-20-octets"),
        pytest.param(request(algorithm="sha512", digest=bytes(32)), "badDataFormat", id="sha512-imprint-of-32-octets"),
        pytest.param(request(policy="1.3.6.1.4.1.32473.9.9"), "unacceptedPolicy", id="unknown-policy"),
        pytest.param(request(extensions=[("1.3.6.1.4.1.32473.5", True)]), "unacceptedExtension", id="critical-ext"),
        pytest.param(request(extensions=[("1.3.6.1.4.1.32473.5", False)]), "unacceptedExtension", id="other-ext"),
        pytest.param(request(version=2), "badRequest", id="version-2"),
        pytest.param(b"", "badDataFormat", id="empty"),
        pytest.param(b"not DER at all", "badDataFormat", id="garbage"),
        pytest.param(request() + b"\x00", "badDataFormat", id="trailing-byte"),
        pytest.param(request()[:-3], "badDataFormat", id="truncated"),
        pytest.param(_ber_indefinite(request()), "badDataFormat", id="ber-indefinite-length"),
        pytest.param(request(cert_req=False)[:1] + bytes([request(cert_req=False)[1] + 3])
                     + request(cert_req=False)[2:] + b"\x01\x01\x01", "badDataFormat", id="certreq-neither-00-nor-ff"),
        pytest.param(encode(SEQUENCE, integer(1) + message_imprint(sha256(b"x")) + b"\x02\x02\x00\x01"),
                     "badDataFormat", id="non-minimal-nonce"),
        pytest.param(encode(SEQUENCE, integer(1) + message_imprint(sha256(b"x")) + b"\x01\x01\xff" + integer(5)),
                     "badDataFormat", id="fields-out-of-order"),
        pytest.param(encode(SEQUENCE, integer(1) + message_imprint(sha256(b"x")) + encode(0xA0, b"")),
                     "badDataFormat", id="empty-extensions"),
    ],
)  # fmt: skip
def test_each_bad_request_is_rejected_with_its_failure_info_over_http_200(
    tsa: Harness, url: str, body: bytes, failure: str
) -> None:
    before = _token_count(tsa)
    status, headers, reply_der = post(url, body)
    assert status == 200 and headers["content-type"] == "application/timestamp-reply"
    reply = read_reply(reply_der)
    assert reply.status == 2  # rejection
    assert reply.failures == {failure}, reply.text
    assert reply.token is None and reply.text
    assert _token_count(tsa) == before  # nothing signed, nothing recorded


def test_an_untrustworthy_clock_means_time_not_available_and_service_resumes_when_trusted(
    tsa: Harness, url: str
) -> None:
    tsa.watch.distrust()
    reply = read_reply(post(url, request())[2])
    assert (reply.status, reply.failures, reply.token) == (2, {"timeNotAvailable"}, None)
    tsa.watch.trust()
    assert read_reply(post(url, request())[2]).status == 0


def test_an_internal_failure_is_system_failure_never_a_500(tsa: Harness, url: str) -> None:
    class Broken:
        def status(self) -> object:
            raise RuntimeError("the watch itself failed")

    tsa.tsa.app.service.watch = Broken()  # type: ignore[assignment]
    status, _, reply_der = post(url, request())
    assert status == 200
    assert read_reply(reply_der).failures == {"systemFailure"}


def test_a_token_whose_record_cannot_be_written_is_never_returned(tsa: Harness, url: str) -> None:
    tsa.tsa.recorder.close()  # nothing more can be recorded
    status, _, reply_der = post(url, request())
    reply = read_reply(reply_der)
    assert status == 200 and reply.failures == {"systemFailure"} and reply.token is None


def test_an_unexpected_database_failure_fails_those_tokens_and_the_recorder_keeps_recording(
    tsa: Harness, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a CandorError (a pool timeout, a lock file): the tokens in that batch get systemFailure, no token
    leaves without its record, and the recorder thread lives on to record the next ones."""
    recorder = tsa.tsa.recorder
    real = recorder._db.connection

    def broken() -> object:
        raise TimeoutError("QueuePool limit reached")

    monkeypatch.setattr(recorder._db, "connection", broken)
    reply = read_reply(post(url, request())[2])
    assert reply.failures == {"systemFailure"} and reply.token is None
    monkeypatch.setattr(recorder._db, "connection", real)
    reply = read_reply(post(url, request())[2])
    assert reply.status == 0 and reply.token is not None


@pytest.mark.parametrize(
    ("method", "content_type", "body", "expected"),
    [
        ("GET", QUERY, b"", 405),
        ("PUT", QUERY, request(), 405),
        ("POST", "application/ocsp-request", request(), 415),
        ("POST", "", request(), 415),
        ("POST", QUERY, b"\x30" + b"\x82\x13\x88" + bytes(5000), 413),
    ],
)
def test_http_errors_are_about_http_only(url: str, method: str, content_type: str, body: bytes, expected: int) -> None:
    status, headers, _ = post(url, body, content_type=content_type, method=method)
    assert status == expected
    if expected == 405:
        assert headers["allow"] == "POST"


def test_a_chunked_body_over_the_limit_is_413(url: str) -> None:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        chunks = iter([bytes(1000)] * 6)
        connection.request("POST", parts.path, body=chunks, headers={"Content-Type": QUERY}, encode_chunked=True)
        assert connection.getresponse().status == 413
    finally:
        connection.close()


def test_the_unit_certificate_is_published_for_verifiers(tsa: Harness, url: str) -> None:
    status, headers, body = post(url.replace("/tsa", "/tsa/units/tsa-ca1-unit-1.der"), b"", method="GET")
    assert status == 200 and headers["content-type"] == "application/pkix-cert"
    assert body == tsa.tsa.keeper.units.units[0].record.certificate.public_bytes(Encoding.DER)
    assert post(url.replace("/tsa", "/tsa/units/nothing.der"), b"", method="GET")[0] == 404


def test_concurrent_requests_are_answered_by_few_commits(tsa: Harness) -> None:
    """Group commit: 200 requests in flight at once are recorded in far fewer transactions, every one of them."""
    before, commits = _token_count(tsa), tsa.tsa.recorder.commits

    async def burst() -> list[bytes]:
        return list(await asyncio.gather(*(tsa.respond(request(data=b"%d" % i)) for i in range(200))))

    replies = [read_reply(r) for r in asyncio.run(burst())]
    assert all(r.status == 0 for r in replies)
    assert _token_count(tsa) == before + 200
    assert tsa.tsa.recorder.commits - commits < 100


def test_the_signer_info_binds_the_unit_by_ess_cert_id_v2_and_signs_with_the_certificate_s_digest(
    tsa: Harness, url: str
) -> None:
    """RFC 5816 / RFC 5035: signing-certificate-v2 with SHA-256 over the unit certificate and its issuerSerial;
    CSBR 6.8: the token's digest is the one that signed the unit certificate (tsa-ca1 is P-384: SHA-384); no
    signing-time; content-type id-ct-TSTInfo."""
    import hashlib

    from pyasn1.codec.der import decoder, encoder
    from pyasn1_alt_modules import rfc5035, rfc5652

    reply = read_reply(post(url, request(cert_req=False))[2])
    info, _ = decoder.decode(reply.token or b"", asn1Spec=rfc5652.ContentInfo())
    signed, _ = decoder.decode(info["content"], asn1Spec=rfc5652.SignedData())
    assert int(signed["version"]) == 3 and not signed["certificates"].isValue
    signer = signed["signerInfos"][0]
    sha384, ecdsa_sha384 = "2.16.840.1.101.3.4.2.2", "1.2.840.10045.4.3.3"
    assert [str(a["algorithm"]) for a in signed["digestAlgorithms"]] == [sha384]
    assert str(signer["digestAlgorithm"]["algorithm"]) == sha384
    assert str(signer["signatureAlgorithm"]["algorithm"]) == ecdsa_sha384
    unit = tsa.tsa.keeper.units.units[0].record.certificate
    assert unit.signature_hash_algorithm is not None and unit.signature_hash_algorithm.name == "sha384"
    attributes = {str(a["attrType"]): a["attrValues"][0] for a in signer["signedAttrs"]}
    assert set(attributes) == {"1.2.840.113549.1.9.3", "1.2.840.113549.1.9.4", str(rfc5035.id_aa_signingCertificateV2)}
    v2, _ = decoder.decode(attributes[str(rfc5035.id_aa_signingCertificateV2)], asn1Spec=rfc5035.SigningCertificateV2())
    (ess,) = list(v2["certs"])
    raw = bytes(attributes[str(rfc5035.id_aa_signingCertificateV2)])
    assert bytes.fromhex("06096086480165030402") not in raw  # the DEFAULT hashAlgorithm SHA-256 is omitted (X.690 11.5)
    assert bytes(ess["certHash"]) == hashlib.sha256(unit.public_bytes(Encoding.DER)).digest()
    assert int(ess["issuerSerial"]["serialNumber"]) == unit.serial_number
    assert encoder.encode(ess["issuerSerial"]["issuer"][0]["directoryName"]) == encode(0xA4, unit.issuer.public_bytes())
