"""The ACME HTTP edge: routes, JWS and nonce checks, and RFC 7807 problem documents (RFC 8555 6, 7).

Every response carries a fresh Replay-Nonce and a Link to the directory (RFC 8555 6.5, 7.1). Request bodies
are bounded before they are read; the URL a JWS must sign is built from the configured external base, never
from the Host header.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route

from candor.acme.core import MAX_ID
from candor.acme.jws import MAX_BODY_BYTES, VerifiedRequest, verify_request
from candor.acme.nonces import Nonces
from candor.acme.problems import AcmeProblem, from_error
from candor.acme.service import AcmeService, Reply

JOSE = "application/jose+json"
# Request threads. A request makes one hop from the event loop to a thread of the edge's own pool and back: the JWS
# check, the nonce and the handler run there (SQL, signing, validation: blocking work). The hop is
# loop.run_in_executor, a future and a queue. Until 2026-11-27 it was Starlette's run_in_threadpool (anyio's
# run_sync: a capacity limiter, a cancel scope and a thread registry on every call): 117 against 73 µs of CPU per
# hop alone, a few per cent of an order at most (docs/performance.md, seventh session). As many threads as anyio's
# default limiter allowed.
REQUEST_THREADS = 40
T = TypeVar("T")


def acme_routes(service: AcmeService, nonces: Nonces) -> list[BaseRoute]:
    base = service.settings.base
    pool = ThreadPoolExecutor(max_workers=REQUEST_THREADS, thread_name_prefix="acme-request")

    async def on_request_thread(function: Callable[..., T], *args: Any) -> T:
        """*function* on a request thread; the threads leave when the routes (and so the pool) are collected."""
        return await asyncio.get_running_loop().run_in_executor(pool, function, *args)

    def headers(extra: dict[str, str] | None = None, *, nonce: str | None = None) -> dict[str, str]:
        values = {
            "Replay-Nonce": nonce or nonces.issue(),
            "Link": f'<{base}/directory>;rel="index"',
            "Cache-Control": "no-store",
        }
        values.update(extra or {})
        return values

    async def directory(request: Request) -> Response:
        return JSONResponse(service.directory(), headers={"Cache-Control": "public, max-age=60"})

    async def renewal_info(request: Request) -> Response:
        """RFC 9773 4: unauthenticated GET of a certificate's suggested renewal window."""
        try:
            status, content, extra = await on_request_thread(service.renewal_info, request.path_params["cert_id"])
        except Exception as error:  # mapped to a problem document, as for every other resource
            return from_error(error)
        return JSONResponse(content, status_code=status, headers=extra)

    async def unknown(request: Request) -> Response:
        """A resource that exists under another method is 405 (RFC 8555 6.3: no GET where POST-as-GET is
        meant); anything else 404. Both as problem documents."""
        for route in routes[:-1]:
            match, _ = route.matches(request.scope)
            if match is Match.PARTIAL and isinstance(route, Route):
                allowed = ", ".join(sorted(route.methods or ()))
                problem = AcmeProblem("malformed", f"this resource takes {allowed} (RFC 8555 6.3)", 405)
                problem.headers["Allow"] = allowed
                return from_error(problem)
        return from_error(AcmeProblem("malformed", "no such ACME resource", 404))

    async def new_nonce(request: Request) -> Response:
        issued = await on_request_thread(headers)
        return Response(status_code=200 if request.method == "HEAD" else 204, headers=issued)

    # POST-as-GET of an order, an authorization or a certificate only reads. Where a read never waits (SQLite: a WAL
    # snapshot, no lock) and nor do the nonces (memory), those requests are answered on the event loop, without the
    # hop to a request thread and back (two thread switches, and the GIL handed back and forth at every SQLite
    # call while the loop has work). Anything that writes, validates or signs, and everything on PostgreSQL,
    # where a read is a network round trip, still runs on a request thread.
    reads_inline = service.db.dialect == "sqlite" and not nonces.blocking

    def post(
        handler: Callable[..., Reply], *, with_id: bool = True, with_address: bool = False, reads: bool = False
    ) -> Callable[[Request], Any]:
        """An endpoint for a JWS POST (RFC 8555 6.2). *reads*: the handler only reads when the request is a
        POST-as-GET (RFC 8555 6.3)."""

        async def endpoint(request: Request) -> Response:
            fresh: list[str] = []  # the response's nonce, once issued

            def check() -> VerifiedRequest:
                # find the account's key (a read: no write lock) and verify, use the request's nonce and issue
                # the response's
                with service.db.reader() as connection:
                    key_of = partial(service.account_key, connection=connection)
                    verified = verify_request(body, url=url, account_key=key_of)
                used, issued = nonces.exchange(verified.nonce)
                fresh.append(issued)
                if not used:
                    raise AcmeProblem("badNonce", "the nonce is unknown, used or expired (RFC 8555 6.5)", 400)
                return verified

            def handle(verified: VerifiedRequest) -> tuple[Reply, dict[str, str]]:
                if with_address:
                    reply = handler(verified, address=request.client.host if request.client else None)
                else:
                    reply = handler(verified, object_id) if with_id else handler(verified)
                return reply, headers(reply[2], nonce=fresh[0])

            def run() -> tuple[Reply, dict[str, str]]:
                return handle(check())

            async def answer() -> tuple[Reply, dict[str, str]]:
                if not (reads and reads_inline):
                    return await on_request_thread(run)  # one hop: the check and the handler
                verified = check()
                if verified.is_post_as_get:
                    return handle(verified)
                return await on_request_thread(handle, verified)

            try:
                body = await _bounded_body(request)
                # the route's path, as request.url.path gives it without building the whole URL (the POST routes'
                # paths hold none of the characters, '?', '#' and '\\', that Starlette's URL would escape)
                url = f"{service.settings.base_url}{request.scope['path']}"
                object_id = int(request.path_params["id"]) if with_id else None
                if object_id is not None and object_id > MAX_ID:
                    raise AcmeProblem("malformed", "no such ACME resource", 404)
                (status, content, _extra), reply_headers = await answer()
            except Exception as error:  # mapped to a problem document; internal details are logged, not sent
                response = from_error(error)
                if fresh:
                    response.headers.update(headers(nonce=fresh[0]))
                else:
                    response.headers.update(await on_request_thread(headers))
                return response
            if isinstance(content, bytes):
                return Response(content, status_code=status, headers=reply_headers)
            return Response(
                json.dumps(content), status_code=status, headers=reply_headers, media_type="application/json"
            )

        return endpoint

    routes: list[BaseRoute] = [
        Route("/acme/directory", directory, methods=["GET"]),
        Route("/acme/new-nonce", new_nonce, methods=["GET", "HEAD"]),
        Route("/acme/renewal-info/{cert_id}", renewal_info, methods=["GET"]),
        Route("/acme/new-account", post(service.new_account, with_id=False, with_address=True), methods=["POST"]),
        Route("/acme/new-order", post(service.new_order, with_id=False), methods=["POST"]),
        Route("/acme/revoke-cert", post(service.revoke_certificate, with_id=False), methods=["POST"]),
        Route("/acme/key-change", post(service.key_change, with_id=False), methods=["POST"]),
        Route("/acme/acct/{id:int}", post(service.account), methods=["POST"]),
        Route("/acme/acct/{id:int}/orders", post(service.account_orders), methods=["POST"]),
        Route("/acme/order/{id:int}", post(service.order, reads=True), methods=["POST"]),
        Route("/acme/order/{id:int}/finalize", post(service.finalize), methods=["POST"]),
        Route("/acme/authz/{id:int}", post(service.authorization, reads=True), methods=["POST"]),
        Route("/acme/chall/{id:int}", post(service.challenge), methods=["POST"]),
        Route("/acme/cert/{id:int}", post(service.certificate, reads=True), methods=["POST"]),
        # Anything else under /acme is a problem document too, never a bare text page.
        Route("/acme/{rest:path}", unknown, methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]),
    ]
    return routes


async def _bounded_body(request: Request) -> bytes:
    if request.headers.get("content-type", "").split(";")[0].strip() != JOSE:
        raise AcmeProblem("malformed", f"the request Content-Type must be {JOSE} (RFC 8555 6.2)", 415)
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise AcmeProblem("malformed", "the request body is too large", 413)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise AcmeProblem("malformed", "the request body is too large", 413)
    return body
