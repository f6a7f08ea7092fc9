"""Responses shared by two responder nodes through a real Redis server (127.0.0.1:6379)."""

from __future__ import annotations

import base64
import os
import time
import uuid
from collections.abc import Iterator

import httpx2 as httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp as x509_ocsp
from ocsp_server import serving
from ocsp_support import Ocsp
from ocsp_support import issuer_certificate as _issuer
from ocsp_support import revoke_and_resign as _revoke

from candor.revocation import RevocationReason
from candor.revocation.ocsp.http import OcspApp
from candor.revocation.ocsp.index import ResponseIndex
from candor.revocation.ocsp.settings import OcspRedisSettings

redis = pytest.importorskip("redis")


@pytest.fixture
def shared() -> Iterator[object]:
    from candor.revocation.ocsp.shared import RedisResponses

    settings = OcspRedisSettings(url=os.environ.get("CANDOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
                                 prefix=f"candor-test-{uuid.uuid4().hex[:8]}:")  # fmt: skip
    try:
        redis.Redis.from_url(settings.url).ping()
    except redis.exceptions.ConnectionError as exc:
        if os.environ.get("CANDOR_REQUIRE_ALL") == "1":
            pytest.fail(f"Redis at {settings.url} does not answer: {exc}")
        pytest.skip(f"Redis at {settings.url} does not answer")
    store = RedisResponses(settings)
    yield store
    client = redis.Redis.from_url(settings.url)
    for key in client.scan_iter(match=settings.prefix + "*"):
        client.delete(key)
    store.close()


def _status(url: str, request: bytes) -> x509_ocsp.OCSPCertStatus | bytes:
    body = httpx.get(f"{url}/ocsp/{base64.b64encode(request).decode()}").content
    parsed = x509_ocsp.load_der_ocsp_response(body)
    if parsed.response_status is not x509_ocsp.OCSPResponseStatus.SUCCESSFUL:
        return body
    return next(iter(parsed.responses)).certificate_status


def test_two_responder_nodes_serve_what_the_signer_put_in_redis_and_follow_a_revocation(
    ocsp: Ocsp, shared: object
) -> None:
    from candor.revocation.ocsp.shared import RedisResponses

    assert isinstance(shared, RedisResponses)
    ocsp.signer.sinks.append(shared)
    certificate = ocsp.ca.issue(["shared.example.com"]).certificate
    request = (
        x509_ocsp.OCSPRequestBuilder()
        .add_certificate(certificate, _issuer(ocsp), hashes.SHA1())  # noqa: S303
        .build()
        .public_bytes(Encoding.DER)
    )
    nodes = [ResponseIndex(), ResponseIndex()]  # two responder nodes: empty memory, no database
    followers = [shared.follow(index) for index in nodes]
    try:
        with (
            serving(OcspApp(nodes[0], ocsp.settings, clock=ocsp.ca.clock, remote=shared)) as first,
            serving(OcspApp(nodes[1], ocsp.settings, clock=ocsp.ca.clock, remote=shared)) as second,
        ):
            assert _status(first, request) == bytes.fromhex("30030a0106")  # not signed yet: unauthorized
            ocsp.signer.presign_new()
            assert _status(first, request) is x509_ocsp.OCSPCertStatus.GOOD
            assert _status(second, request) is x509_ocsp.OCSPCertStatus.GOOD
            _revoke(ocsp, certificate.serial_number, RevocationReason.KEY_COMPROMISE)
            deadline = time.monotonic() + 5
            statuses: list[object] = []
            while time.monotonic() < deadline:
                statuses = [_status(first, request), _status(second, request)]
                if statuses == [x509_ocsp.OCSPCertStatus.REVOKED] * 2:
                    break
                time.sleep(0.05)
            assert statuses == [x509_ocsp.OCSPCertStatus.REVOKED] * 2
    finally:
        for follower in followers:
            follower.stop()
    entry = shared.get_sync(nodes[0].by_request[request].keys[0])
    assert entry is not None
    single = next(iter(x509_ocsp.load_der_ocsp_response(entry.der).responses))
    assert single.revocation_reason is x509.ReasonFlags.key_compromise


def test_a_value_in_redis_that_is_not_a_response_is_a_miss_and_the_follower_lives_on(
    ocsp: Ocsp, shared: object
) -> None:
    """Another writer under the prefix, a truncated write: a miss on the request path (never a 500), and the
    follower thread keeps following what is announced after it."""
    import asyncio

    from candor.revocation.ocsp.shared import RedisResponses

    assert isinstance(shared, RedisResponses)
    bad_key = b"\x01" * 24
    shared._sync.set(shared._key(bad_key), b"\x00\x01garbage")
    assert asyncio.run(shared.get(bad_key)) is None
    assert shared.get_sync(bad_key) is None
    index = ResponseIndex()
    follower = shared.follow(index)
    try:
        time.sleep(0.3)  # subscribed
        shared._sync.publish(shared.channel, bytes((len(bad_key),)) + bad_key)  # announces the garbage
        ocsp.ca.issue(["after-garbage.example.com"])
        ocsp.signer.sinks.append(shared)
        assert ocsp.signer.presign_new() >= 1
        deadline = time.monotonic() + 5
        while not index.by_key and time.monotonic() < deadline:
            time.sleep(0.05)
        assert follower._thread.is_alive() and index.by_key, "the follower stopped following"
    finally:
        follower.stop()
