"""The responder's HTTP/1.1 protocol (candor.revocation.ocsp.protocol): pre-signed answers written from the parser's
callbacks say exactly what the ASGI application says, and everything else (pipelined behind an application
request, HTTP/1.0, Connection: close, Expect: 100-continue, chunked or oversized bodies, other paths) still reaches
the application, in order, on the same connection."""

from __future__ import annotations

import base64
import io
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp as x509_ocsp
from ocsp_server import serving
from ocsp_support import Ocsp
from ocsp_support import issuer_certificate as _issuer

from candor.revocation.ocsp.http import OcspApp
from candor.revocation.ocsp.protocol import OcspProtocol

MALFORMED = bytes.fromhex("30030a0101")
SHA1 = hashes.SHA1()  # noqa: S303  (RFC 5019 2.1.1)


class CountingApp(OcspApp):
    """The responder, counting the requests that reach it as an ASGI application."""

    calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            type(self).calls += 1
        await super().__call__(scope, receive, send)


@pytest.fixture
def counting(ocsp: Ocsp) -> type[CountingApp]:
    CountingApp.calls = 0
    return CountingApp


def _requests(ocsp: Ocsp, name: str) -> tuple[bytes, bytes]:
    """A pre-signed response's no-nonce request (SHA-1 CertID, as openssl -no_nonce sends it) and the same with a
    nonce, for a newly issued certificate."""
    certificate = ocsp.ca.issue([name]).certificate
    ocsp.signer.presign_new()
    builder = x509_ocsp.OCSPRequestBuilder().add_certificate(certificate, _issuer(ocsp), SHA1)
    plain = builder.build().public_bytes(Encoding.DER)
    nonced = builder.add_extension(x509.OCSPNonce(b"0123456789abcdef"), critical=False).build()
    return plain, nonced.public_bytes(Encoding.DER)


def _good(body: bytes) -> bool:
    singles = list(x509_ocsp.load_der_ocsp_response(body).responses)
    return bool(singles) and all(s.certificate_status is x509_ocsp.OCSPCertStatus.GOOD for s in singles)


def _get(raw: bytes, *, lower: bool = False) -> bytes:
    encoded = urllib.parse.quote(base64.b64encode(raw).decode(), safe="")
    if lower:
        encoded = encoded.replace("%2F", "%2f").replace("%2B", "%2b").replace("%3D", "%3d")
    return f"/ocsp/tls-e1/{encoded}".encode()


def _post(raw: bytes, *extra: bytes) -> bytes:
    head = [b"POST /ocsp HTTP/1.1", b"Host: x", b"Content-Type: application/ocsp-request"]
    head += [b"Content-Length: %d" % len(raw), *extra]
    return b"\r\n".join(head) + b"\r\n\r\n" + raw


def _get_request(path: bytes, *extra: bytes, version: bytes = b"HTTP/1.1") -> bytes:
    return b"\r\n".join([b"GET " + path + b" " + version, b"Host: x", *extra]) + b"\r\n\r\n"


def _read_response(reader: io.BufferedReader) -> tuple[int, dict[str, str], bytes]:
    status = reader.readline()
    assert status.startswith(b"HTTP/1.1 "), status
    headers: dict[str, str] = {}
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, value = line.decode().split(":", 1)
        headers[name.lower()] = value.strip()
    body = reader.read(int(headers.get("content-length", "0")))
    return int(status.split()[1]), headers, body


@contextmanager
def _connection(base: str) -> Iterator[tuple[socket.socket, io.BufferedReader]]:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        yield sock, sock.makefile("rb")


def _exchange(base: str, data: bytes, count: int) -> list[tuple[int, dict[str, str], bytes]]:
    with _connection(base) as (sock, reader):
        sock.sendall(data)
        return [_read_response(reader) for _ in range(count)]


def test_a_quick_answer_is_what_the_application_answers(ocsp: Ocsp, counting: type[CountingApp]) -> None:
    plain, _ = _requests(ocsp, "quick-same.example.com")
    app = counting(ocsp.index, ocsp.settings, clock=ocsp.ca.clock)
    cases = [_get_request(_get(plain)), _get_request(_get(plain, lower=True)), _post(plain)]
    answers = {}
    for quick in (True, False):
        with serving(app, quick=quick) as base:
            answers[quick] = _exchange(base, b"".join(cases), len(cases))
    assert counting.calls == len(cases)  # all of them with uvicorn's protocol, none with the quick one
    for (status, headers, body), (status_, headers_, body_) in zip(answers[True], answers[False], strict=True):
        assert (status, body) == (status_, body_) and status == 200
        assert _good(body)
        del headers["date"], headers_["date"]
        assert headers == headers_
        assert set(headers) == {"server", "content-type", "content-length", "etag", "last-modified", "expires",
                                "cache-control"}  # fmt: skip


def test_a_conditional_request_gets_the_same_304(ocsp: Ocsp) -> None:
    plain, _ = _requests(ocsp, "quick-etag.example.com")
    app = OcspApp(ocsp.index, ocsp.settings, clock=ocsp.ca.clock)
    with serving(app) as base:
        _, headers, _ = _exchange(base, _get_request(_get(plain)), 1)[0]
        etag = headers["etag"].encode()
        status, again, body = _exchange(base, _get_request(_get(plain), b"If-None-Match: " + etag), 1)[0]
    assert (status, body, again["etag"]) == (304, b"", headers["etag"])
    assert again["cache-control"] == headers["cache-control"]


def test_pipelined_requests_are_answered_in_order_whoever_answers_them(ocsp: Ocsp, counting: type[CountingApp]) -> None:
    """Quick, application (nonce; garbage; another path), quick again: each answer in its request's place."""
    plain, nonced = _requests(ocsp, "quick-pipeline.example.com")
    app = counting(ocsp.index, ocsp.settings, clock=ocsp.ca.clock)
    with serving(app) as base:
        first = _exchange(base, _get_request(_get(plain)), 1)[0]
        sequence = [
            (_get_request(_get(plain)), first[2]),
            (_post(nonced), None),
            (_get_request(_get(plain)), first[2]),
            (_get_request(b"/ocsp/tls-e1/bm90IGEgcmVxdWVzdA"), MALFORMED),
            (_post(plain), first[2]),
            (_get_request(b"/elsewhere"), b"not found"),
            (_post(b"\x30\x03garbage"), MALFORMED),
            (_get_request(_get(plain)), first[2]),
        ]
        answers = _exchange(base, b"".join(data for data, _ in sequence), len(sequence))
    for (data, expected), (status, _, body) in zip(sequence, answers, strict=True):
        if expected is None:  # the nonced request, answered from the cache (nonce = "cache"): a response of its own
            assert _good(body), data
        else:
            assert body == expected, data
        assert status == (404 if expected == b"not found" else 200)
    assert counting.calls >= 4  # nonce, garbage, elsewhere, garbage POST (and what queued behind them)


def test_http_1_0_and_connection_close_are_answered_then_closed(ocsp: Ocsp) -> None:
    plain, _ = _requests(ocsp, "quick-close.example.com")
    with serving(OcspApp(ocsp.index, ocsp.settings, clock=ocsp.ca.clock)) as base:
        for request in (
            _get_request(_get(plain), version=b"HTTP/1.0"),
            _get_request(_get(plain), b"Connection: close"),
            _post(plain, b"Connection: close"),
        ):
            with _connection(base) as (sock, reader):
                sock.sendall(request)
                status, headers, body = _read_response(reader)
                assert status == 200 and headers["connection"] == "close"
                assert _good(body)
                assert reader.read() == b""  # closed by the server


def test_bodies_the_protocol_does_not_read_reach_the_application(ocsp: Ocsp, counting: type[CountingApp]) -> None:
    """Expect: 100-continue, a chunked body, one over max_request_bytes, a GET with a body, two Content-Lengths (400
    from httptools)."""
    plain, _ = _requests(ocsp, "quick-bodies.example.com")
    app = counting(ocsp.index, ocsp.settings, clock=ocsp.ca.clock)
    with serving(app) as base:
        good = _exchange(base, _post(plain), 1)[0][2]
        assert counting.calls == 0
        with _connection(base) as (sock, reader):
            head = _post(plain, b"Expect: 100-continue").split(b"\r\n\r\n")[0] + b"\r\n\r\n"
            sock.sendall(head)
            assert reader.readline() == b"HTTP/1.1 100 Continue\r\n" and reader.readline() == b"\r\n"
            sock.sendall(plain)
            assert _read_response(reader)[2] == good
        chunked = b"POST /ocsp HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        chunked += b"%x\r\n%s\r\n0\r\n\r\n" % (len(plain), plain)
        assert _exchange(base, chunked, 1)[0][2] == good
        big = plain + b"\x00" * (ocsp.settings.max_request_bytes + 1 - len(plain))
        assert _exchange(base, _post(big), 1)[0][2] == MALFORMED
        assert counting.calls == 3
        # a GET with a body (which the responder ignores): not buffered by the protocol, uvicorn's flow control reads it
        with_body = _get_request(_get(plain), b"Content-Length: 200000").removesuffix(b"\r\n") + b"\r\n"
        answers = _exchange(base, with_body + b"\x00" * 200_000 + _get_request(_get(plain)), 2)
        assert [body for _, _, body in answers] == [good, good] and counting.calls == 4
        twice = _post(plain, b"Content-Length: %d" % len(plain))
        assert _exchange(base, twice, 1)[0][0] == 400


def test_keep_alive_outlasts_quick_answers_and_ends_after_the_idle_timeout(ocsp: Ocsp) -> None:
    plain, _ = _requests(ocsp, "quick-keepalive.example.com")
    app = OcspApp(ocsp.index, ocsp.settings, clock=ocsp.ca.clock)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", http=OcspProtocol.serving([app]), lifespan="off",
                            timeout_keep_alive=1)  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        with _connection(f"http://127.0.0.1:{port}") as (client, reader):
            for _ in range(4):  # 2.4 s of requests 0.6 s apart: each one restarts the idle period
                client.sendall(_get_request(_get(plain)))
                assert _read_response(reader)[0] == 200
                time.sleep(0.6)
            started = time.monotonic()
            assert reader.read() == b""  # closed after a second idle
            assert 0.2 < time.monotonic() - started < 2.5
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_candor_serve_gives_the_protocol_the_responders_its_routes_serve(ocsp_home: Path) -> None:
    """Every issuer's OCSP URL is a Starlette route and an app of the listener's protocol, the same responder: the
    protocol answers only what those routes would (their paths, the same index and settings)."""
    from starlette.routing import Route

    from candor.cli.context import open_context
    from candor.cli.ocsp_edge import open_responder, responder_endpoints
    from candor.keys import KeyStores

    with open_context(ocsp_home, {}) as context:
        stores = KeyStores(context.config.keys.stores, base_dir=context.data_dir, environ={})
        responder = open_responder(context, stores)
        try:
            endpoints = responder_endpoints(context, responder)
        finally:
            responder.close()
            stores.close()
    routed = {route.path: route.endpoint for route in endpoints.routes if isinstance(route, Route)}
    apps = endpoints.protocol.apps
    assert sorted(app.prefix for app in apps) == ["/ocsp/tls-e1", "/ocsp/tls-r1"]
    for app in apps:
        assert routed[app.prefix] is app and routed[app.prefix + "/{request:path}"] is app
        assert app.index is responder.index
    assert issubclass(endpoints.protocol, OcspProtocol)
    assert endpoints.protocol.max_body == context.config.ocsp.max_request_bytes
