"""The log's HTTP API: RFC 6962 section 4 under ``<prefix>/ct/v1/``, and the static-ct-api files under
``<prefix>/`` (checkpoint, tile/..., issuer/...) for deployments that let Candor serve them too.

Every refusal is a 400 with a JSON ``{"error": ...}`` body (RFC 6962 4: "the log MUST return HTTP 400");
a full queue or an unavailable database is a 503 with Retry-After. Request bodies are bounded before they are
read. Internet-facing: nothing here imports ``candor.keys``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from candor.ct.log.chain import SubmissionError
from candor.ct.log.merkle import ProofError
from candor.ct.log.service import CtLog, LogRequestError
from candor.errors import CandorError
from candor.storage.group_commit import Overloaded

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024  # a chain of ten large certificates, base64, fits comfortably
_TILE_PATH = re.compile(r"^(?:[0-5]|data)/(?:x\d{3}/)*\d{3}(?:\.p/(?:[1-9]\d?|1\d\d|2[0-4]\d|25[0-5]))?$")
_ISSUER = re.compile(r"^[0-9a-f]{64}$")


class _BadRequest(Exception):
    pass


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _int_param(request: Request, name: str) -> int:
    value = request.query_params.get(name)
    if value is None or not value.isdigit() or len(value) > 19:
        raise _BadRequest(f"parameter {name!r} must be a non-negative decimal integer")
    return int(value)


async def _bounded_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise _BadRequest(f"the request body is larger than {MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _BadRequest(f"the request body is larger than {MAX_BODY_BYTES} bytes")
    return bytes(body)


def _chain_of(body: bytes) -> list[bytes]:
    """RFC 6962 4.1: ``{"chain": [base64 DER, ...]}``."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _BadRequest("the body is not JSON") from None
    chain = document.get("chain") if isinstance(document, dict) else None
    if not isinstance(chain, list) or not chain or not all(isinstance(item, str) for item in chain):
        raise _BadRequest('the body must be {"chain": [base64 certificates, ...]}')
    try:
        return [base64.b64decode(item, validate=True) for item in chain]
    except (binascii.Error, ValueError):
        raise _BadRequest("a chain element is not valid base64") from None


Handler = Callable[[Request], Awaitable[Response]]


def _guarded(handler: Handler) -> Handler:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except (_BadRequest, SubmissionError, LogRequestError, ProofError) as refusal:
            return _error(400, str(refusal))
        except Overloaded as busy:
            return _error(503, str(busy), {"Retry-After": "1"})
        except CandorError as error:  # storage unavailable: no SCT was promised
            log.warning("CT log request failed: %s", error)
            return _error(503, "the log cannot store or read entries right now", {"Retry-After": "5"})
        except RuntimeError as error:  # before the first tree head
            log.warning("CT log request failed: %s", error)
            return _error(503, "the log is starting", {"Retry-After": "1"})

    return endpoint


def ct_log_routes(ct_log: CtLog, *, prefix: str) -> list[BaseRoute]:
    """The routes of one log, under *prefix* (e.g. ``/ct/log-a``; submission URLs are
    ``<prefix>/ct/v1/add-chain`` ...)."""
    if not prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError("the prefix starts with '/' and does not end with one")

    def add(precertificate: bool) -> Handler:
        async def handler(request: Request) -> Response:
            ders = _chain_of(await _bounded_body(request))
            submission = ct_log.check(ders, precertificate=precertificate)
            sct = await asyncio.wrap_future(ct_log.submit(submission))
            return JSONResponse(sct.to_json())

        return handler

    async def get_sth(request: Request) -> Response:
        return JSONResponse(ct_log.head().to_json(), headers={"Cache-Control": "no-cache"})

    async def get_sth_consistency(request: Request) -> Response:
        first, second = _int_param(request, "first"), _int_param(request, "second")
        proof = ct_log.consistency(first, second)
        return JSONResponse({"consistency": [_b64(node) for node in proof]})

    async def get_proof_by_hash(request: Request) -> Response:
        try:
            value = base64.b64decode(request.query_params.get("hash", ""), validate=True)
        except (binascii.Error, ValueError):
            raise _BadRequest("parameter 'hash' is not valid base64") from None
        if len(value) != 32:
            raise _BadRequest("parameter 'hash' must be a base64 SHA-256 leaf hash")
        tree_size = _int_param(request, "tree_size")
        index, path = await run_in_threadpool(ct_log.proof_by_hash, value, tree_size)
        return JSONResponse({"leaf_index": index, "audit_path": [_b64(node) for node in path]})

    async def get_entries(request: Request) -> Response:
        start, end = _int_param(request, "start"), _int_param(request, "end")
        found = await run_in_threadpool(ct_log.entries, start, end)
        return JSONResponse(
            {"entries": [{"leaf_input": _b64(leaf), "extra_data": _b64(extra)} for leaf, extra in found]}
        )

    async def get_roots(request: Request) -> Response:
        return JSONResponse({"certificates": [_b64(der) for der in ct_log.roots()]})

    async def get_entry_and_proof(request: Request) -> Response:
        index, tree_size = _int_param(request, "leaf_index"), _int_param(request, "tree_size")
        leaf, extra, path = await run_in_threadpool(ct_log.entry_and_proof, index, tree_size)
        return JSONResponse(
            {"leaf_input": _b64(leaf), "extra_data": _b64(extra), "audit_path": [_b64(n) for n in path]}
        )

    base = f"{prefix}/ct/v1"
    routes: list[BaseRoute] = [
        Route(f"{base}/add-chain", _guarded(add(False)), methods=["POST"]),
        Route(f"{base}/add-pre-chain", _guarded(add(True)), methods=["POST"]),
        Route(f"{base}/get-sth", _guarded(get_sth), methods=["GET"]),
        Route(f"{base}/get-sth-consistency", _guarded(get_sth_consistency), methods=["GET"]),
        Route(f"{base}/get-proof-by-hash", _guarded(get_proof_by_hash), methods=["GET"]),
        Route(f"{base}/get-entries", _guarded(get_entries), methods=["GET"]),
        Route(f"{base}/get-roots", _guarded(get_roots), methods=["GET"]),
        Route(f"{base}/get-entry-and-proof", _guarded(get_entry_and_proof), methods=["GET"]),
    ]
    if ct_log.parameters.static_dir is not None:
        routes += _static_routes(ct_log.parameters.static_dir, prefix)
    return routes


def _static_routes(directory: Path, prefix: str) -> list[BaseRoute]:
    """static-ct-api monitoring endpoints served from the files the log writes (any web server can do this)."""

    def read(path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    async def checkpoint(request: Request) -> Response:
        body = read(directory / "checkpoint")
        if body is None:
            return _error(404, "no checkpoint yet")
        return Response(body, media_type="text/plain; charset=utf-8", headers={"Cache-Control": "max-age=5"})

    async def tile(request: Request) -> Response:
        path = request.path_params["path"]
        body = read(directory / "tile" / path) if _TILE_PATH.match(path) else None
        if body is None:
            return _error(404, "no such tile")
        return Response(body, media_type="application/octet-stream", headers={"Cache-Control": _IMMUTABLE})

    async def issuer(request: Request) -> Response:
        fingerprint = request.path_params["fingerprint"]
        body = read(directory / "issuer" / fingerprint) if _ISSUER.match(fingerprint) else None
        if body is None:
            return _error(404, "no such issuer")
        return Response(body, media_type="application/pkix-cert", headers={"Cache-Control": _IMMUTABLE})

    return [
        Route(f"{prefix}/checkpoint", checkpoint, methods=["GET"]),
        Route(f"{prefix}/tile/{{path:path}}", tile, methods=["GET"]),
        Route(f"{prefix}/issuer/{{fingerprint}}", issuer, methods=["GET"]),
    ]


_IMMUTABLE = "public, max-age=604800, immutable"
