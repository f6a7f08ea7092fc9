"""The few ASGI pieces Candor's bare (router-less) apps share: the OCSP responder and the TSA, which answer ahead of
Starlette on their hot paths. Types, a bounded request-body reader and a plain-text reply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(Exception):
    """The request body grew past the caller's limit (nothing more is read)."""


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, at most *limit* bytes (:class:`BodyTooLarge` past it); None when the client went away
    before sending it."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        more = message.get("more_body", False)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def plain(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    """A text/plain reply (HTTP-level refusals: 404, 405, 413, 415)."""
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body)), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


__all__ = ["ASGIApp", "BodyTooLarge", "Message", "Receive", "Scope", "Send", "plain", "read_body"]
