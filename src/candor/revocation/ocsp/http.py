"""OCSP over HTTP (RFC 6960 appendix A; RFC 5019 5 and 6): GET ``/ocsp/{base64}`` and POST
``application/ocsp-request``, answered from the pre-signed index by a bare ASGI callable (no router, no
request objects: the header block of a response is encoded once, when the response is signed).

Every answer is HTTP 200 with an OCSPResponse; errors are OCSP statuses (malformedRequest for bytes that are
not one well-formed request, unauthorized for an issuer or serial this responder has no response for, BR
4.9.9 and RFC 6960 2.3; tryLater once a stored response has passed its nextUpdate), never a 500. Caching
headers follow Boulder's responder: Cache-Control ``max-age`` = seconds to nextUpdate (capped), ``public,
no-transform, must-revalidate`` (RFC 5019 6.2 forbids no-cache), ETag, Last-Modified = thisUpdate, Expires =
nextUpdate, and 304 for a matching If-None-Match.

Served by uvicorn with :class:`candor.revocation.ocsp.protocol.OcspProtocol`, the common request (a pre-signed
response's own no-nonce request) is answered in the HTTP protocol itself, as :meth:`OcspApp.entry_answer` says,
and never reaches this app.
"""

from __future__ import annotations

import binascii
import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from starlette.routing import Mount

from candor.asgi import ASGIApp, BodyTooLarge, Receive, Scope, Send, plain, read_body
from candor.clock import Clock, SystemClock
from candor.revocation.ocsp import der
from candor.revocation.ocsp.entries import Entry
from candor.revocation.ocsp.index import Malformed, ParsedRequest, ResponseIndex, parse_request
from candor.revocation.ocsp.settings import OcspSettings

log = logging.getLogger(__name__)


ISSUER_SEGMENT = re.compile(r"^[a-z0-9-]{1,64}/")  # /ocsp/{issuer}/{base64}: the AIA URL Candor bakes in
CACHE_CONTROL = b"public, no-transform, must-revalidate"  # after max-age (Boulder's; RFC 5019 6.2: no no-cache)
ERROR_HEADERS = [(b"content-type", b"application/ocsp-response"), (b"cache-control", b"no-store")]
ERROR_HEADERS_5 = [*ERROR_HEADERS, (b"content-length", b"5")]  # every error OCSPResponse is 5 bytes


Answer = tuple[int, Sequence[tuple[bytes, bytes]], bytes]  # HTTP status, headers, body


class RemoteResponses(Protocol):
    """A shared store consulted on an in-memory miss (Redis)."""

    async def get(self, key: bytes) -> Entry | None: ...


class OnDemandSigner(Protocol):
    """Signs, through the signer side, a response for a request that carries a nonce: the status *cached* says, the
    nonce echoed (RFC 6960 4.4.1, RFC 9654). None when it cannot now (every signing slot busy: the caller serves
    *cached*, as RFC 5019 2.1.1 has a responder that does not sign on demand do)."""

    async def sign(self, request: ParsedRequest, cached: Entry) -> bytes | None: ...


class OcspApp:
    """The responder as an ASGI app. Paths under *prefix* are OCSP; anything else goes to *fallback* (or 404),
    so ``candor serve`` can put this app in front of another one."""

    def __init__(
        self,
        index: ResponseIndex,
        settings: OcspSettings,
        *,
        clock: Clock | None = None,
        prefix: str = "/ocsp",
        fallback: ASGIApp | None = None,
        remote: RemoteResponses | None = None,
        on_demand: OnDemandSigner | None = None,
    ) -> None:
        self.index = index
        self.settings = settings
        self.clock = clock or SystemClock()
        # the clock's Unix time; time.time() itself for the system clock (a datetime costs a microsecond a request)
        self.timestamp: Callable[[], float] = (
            time.time if type(self.clock) is SystemClock else lambda: self.clock.now().timestamp()
        )
        self.prefix = prefix.rstrip("/")
        self.fallback = fallback
        self.remote = remote
        self.on_demand = on_demand if settings.nonce == "sign" else None
        self._max = settings.max_request_bytes
        self.cap = settings.max_age_cap_seconds
        self.capped = (b"cache-control", b"max-age=%d, %s" % (self.cap, CACHE_CONTROL))  # the usual Cache-Control

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if self.fallback is not None:
                await self.fallback(scope, receive, send)
            return
        path: str = scope["path"]
        if path != self.prefix and not path.startswith(self.prefix + "/"):
            if self.fallback is not None:
                await self.fallback(scope, receive, send)
            else:
                await plain(send, 404, b"not found")
            return
        method = scope["method"]
        if method == "GET":
            raw = decode_get(path[len(self.prefix) + 1 :], self._max)
        elif method == "POST":
            raw = await _read_body(scope, receive, self._max)
        else:
            await plain(send, 405, b"method not allowed", [(b"allow", b"GET, POST")])
            return
        if raw is None:
            await _error(send, der.MALFORMED_REQUEST)
            return
        entry = self.index.by_request.get(raw)
        if entry is None:
            try:
                parsed = parse_request(raw)
            except Malformed:
                await _error(send, der.MALFORMED_REQUEST)
                return
            entry = self.index.by_key.get(parsed.key)
            if entry is None and self.remote is not None:
                entry = await self.remote.get(parsed.key)
                if entry is not None:
                    self.index.publish([entry])
            # Never issued, or not ours (an unknown issuerKeyHash, or our key under another issuer's name, RFC 6960
            # 4.1.1): never "good" (BR 4.9.9), and nothing to sign on demand
            if entry is None or not parsed.names_issuer_of(entry):
                await _error(send, der.UNAUTHORIZED)
                return
            if parsed.nonce is not None and self.on_demand is not None and entry.next_update_ts > self.timestamp():
                signed = await self.on_demand.sign(parsed, entry)
                if signed is not None:  # for this request only: no shared cache may keep it
                    headers = [*ERROR_HEADERS, (b"content-length", b"%d" % len(signed))]
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
                    await send({"type": "http.response.body", "body": signed})
                    return
        await self._send_entry(scope, send, entry)

    async def _send_entry(self, scope: Scope, send: Send, entry: Entry) -> None:
        status, headers, body = self.entry_answer(entry, scope["headers"])
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def entry_answer(self, entry: Entry, request_headers: list[tuple[bytes, bytes]]) -> Answer:
        """HTTP status, headers and body serving *entry*: tryLater past its nextUpdate, 304 for a matching
        If-None-Match, else the response with its caching headers."""
        remaining = int(entry.next_update_ts - self.timestamp())
        if remaining <= 0:  # never serve a response past its nextUpdate (BR 4.9.10)
            return 200, ERROR_HEADERS_5, der.TRY_LATER
        if remaining >= self.cap:  # the usual case: the first half of a response's life, with the default cap
            cache_control = self.capped
        else:
            cache_control = (b"cache-control", b"max-age=%d, %s" % (remaining, CACHE_CONTROL))
        for name, value in request_headers:
            if name == b"if-none-match" and entry.etag in value:
                return 304, [(b"etag", entry.etag), cache_control], b""
        return 200, [*entry.headers, cache_control], entry.der


def decode_get(encoded: str, limit: int) -> bytes | None:
    """RFC 6960 A.1: the URL-encoded base64 of the DER request (already URL-decoded by the server), with or
    without padding, after an optional issuer segment."""
    if len(encoded) > limit * 2:
        return None
    if ISSUER_SEGMENT.match(encoded):
        encoded = encoded.split("/", 1)[1]
    if "%" in encoded:  # doubly encoded by some clients
        from urllib.parse import unquote

        encoded = unquote(encoded)
    # a '+' that was form-decoded into a space; a leading '/' from a doubled slash. Never a trailing '/': that is
    # base64's 63rd digit, the last character of one unpadded request in 64
    encoded = encoded.replace(" ", "+").lstrip("/")
    if not encoded:
        return None
    try:
        return binascii.a2b_base64(encoded + "=" * (-len(encoded) % 4), strict_mode=True)
    except (binascii.Error, ValueError):
        return None


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The POSTed request, or None when it is larger than *limit* (malformedRequest, RFC 6960 2.3) or never came."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                if int(value) > limit:
                    return None
            except ValueError:
                return None
    try:
        return await read_body(receive, limit)
    except BodyTooLarge:
        return None


async def _error(send: Send, body: bytes) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": ERROR_HEADERS_5})
    await send({"type": "http.response.body", "body": body})


def ocsp_routes(app: OcspApp) -> list[Mount]:
    """Starlette routes for *app* (``Mount("/ocsp", ...)``), for an application built with Starlette's router.
    The fastest wiring is the bare app in front: ``OcspApp(..., fallback=starlette_app)``."""

    async def mounted(scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if not path.startswith(app.prefix):  # a Starlette that strips the mount prefix into root_path
            scope = {**scope, "path": scope.get("root_path", "") + path}
        await app(scope, receive, send)

    return [Mount(app.prefix, app=mounted)]
