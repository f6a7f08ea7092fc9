"""The time-stamp protocol over HTTP (RFC 3161 3.4): POST ``application/timestamp-query``, answered with
``application/timestamp-reply``, by a bare ASGI callable (no router or request objects on the hot path).

HTTP status codes say only what HTTP is about: another method is 405 (Allow: POST), another content type 415,
a body over the configured size 413. Everything about the request itself, a malformed one included, is an
HTTP 200 with a TimeStampResp: a rejection with its PKIFailureInfo (RFC 3161 2.4.2), never a 500.
"""

from __future__ import annotations

from candor.asgi import BodyTooLarge, Receive, Scope, Send, plain, read_body
from candor.tsa.service import TsaService

QUERY_TYPE = b"application/timestamp-query"
REPLY_HEADERS = [(b"content-type", b"application/timestamp-reply"), (b"cache-control", b"no-store")]


class TsaApp:
    """``POST {path}``; any other path is 404 (``candor serve`` routes only *path* here)."""

    def __init__(self, service: TsaService, *, max_request_bytes: int, path: str = "/tsa") -> None:
        self.service = service
        self.max_request_bytes = max_request_bytes
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] != self.path:
            await plain(send, 404, b"not found")
            return
        if scope["method"] != "POST":
            await plain(send, 405, b"method not allowed: POST a TimeStampReq", [(b"allow", b"POST")])
            return
        length: int | None = None
        media_type = b""
        for name, value in scope["headers"]:
            if name == b"content-type":
                media_type = value.split(b";", 1)[0].strip().lower()
            elif name == b"content-length":
                length = int(value) if value.isdigit() else -1
        if media_type != QUERY_TYPE:
            await plain(send, 415, b"unsupported media type: send application/timestamp-query")
            return
        if length == -1:
            await plain(send, 400, b"bad content-length")
            return
        if length is not None and length > self.max_request_bytes:
            await plain(send, 413, b"request too large")
            return
        try:
            body = await read_body(receive, self.max_request_bytes)
        except BodyTooLarge:
            await plain(send, 413, b"request too large")
            return
        if body is None:  # the client went away
            return
        reply = await self.service.respond(body)
        headers = [*REPLY_HEADERS, (b"content-length", b"%d" % len(reply))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": reply})
