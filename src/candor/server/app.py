"""The HTTP front end of ``candor serve``: health, CA certificates (AIA caIssuers), CRLs.

Internet-facing: it reads the database and the public files, and never imports ``candor.keys``. Later roles
(ACME, OCSP, CT, TSA) mount their own routes on this application.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from cryptography import x509
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from candor.clock import Clock
from candor.storage import Database, repositories

log = logging.getLogger(__name__)

# RFC 2585 section 4: the media types for DER certificates and CRLs over HTTP.
PKIX_CERT = "application/pkix-cert"
PKIX_CRL = "application/pkix-crl"
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


@dataclass
class ServerState:
    db: Database
    clock: Clock
    public_dir: Path
    base_url: str
    issuer_der: dict[str, bytes] = field(default_factory=dict)

    def load_issuers(self) -> None:
        with self.db.session() as session:
            self.issuer_der = {i.name: i.certificate_der for i in repositories.list_issuers(session)}


def _cached(body: bytes, media_type: str, request: Request, *, max_age: int) -> Response:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={max_age}"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def create_app(state: ServerState, *, mounts: Sequence[BaseRoute] = ()) -> Starlette:
    """The application; later roles (ACME, OCSP, CT, TSA) pass their routes or sub-applications in *mounts*."""

    async def index(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "health": f"{state.base_url}/health",
                "issuers": {name: f"{state.base_url}/issuers/{name}.der" for name in sorted(state.issuer_der)},
            }
        )

    async def health(request: Request) -> JSONResponse:
        try:
            with state.db.session() as session:
                session.execute(text("SELECT 1"))
        except Exception:
            log.warning("health check: database unreachable", exc_info=True)
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        return JSONResponse(
            {
                "status": "ok",
                "database": "ok",
                "issuers": len(state.issuer_der),
                "time": state.clock.now().isoformat(),
            }
        )

    async def issuer_certificate(request: Request) -> Response:
        name, suffix = request.path_params["name"], request.path_params["suffix"]
        if not _NAME.match(name) or suffix not in ("der", "pem"):
            raise HTTPException(404)
        if name not in state.issuer_der:
            state.load_issuers()  # a ceremony may have added one since start-up
        der = state.issuer_der.get(name)
        if der is None:
            raise HTTPException(404)
        if suffix == "pem":
            pem_path = state.public_dir / "issuers" / f"{name}.pem"
            return _cached(pem_path.read_bytes(), "application/x-pem-file", request, max_age=86400)
        return _cached(der, PKIX_CERT, request, max_age=86400)

    async def crl(request: Request) -> Response:
        name = request.path_params["name"]
        if not _NAME.match(name):
            raise HTTPException(404)
        path = state.public_dir / "crl" / f"{name}.crl"
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            raise HTTPException(404) from None
        response = _cached(body, PKIX_CRL, request, max_age=300)
        modified = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
        response.headers["Last-Modified"] = format_datetime(modified, usegmt=True)
        return response

    async def shard_crl(request: Request) -> Response:
        """A sharded CRL (``{shard}.crl``) or the issuer's CCADB JSON array of them (candor.revocation.crl)."""
        issuer, file = request.path_params["issuer"], request.path_params["file"]
        shard, _, suffix = file.partition(".")
        if not _NAME.match(issuer) or not ((shard.isdigit() and suffix == "crl") or file == "ccadb.json"):
            raise HTTPException(404)
        path = state.public_dir / "crl" / issuer / file
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            raise HTTPException(404) from None
        if suffix == "json":
            return _cached(body, "application/json", request, max_age=300)
        # Cached until nextUpdate at most, and 5 minutes at most, so that a revocation reaches caches in minutes.
        left = (x509.load_der_x509_crl(body).next_update_utc or state.clock.now()) - state.clock.now()
        response = _cached(body, PKIX_CRL, request, max_age=max(0, min(300, int(left.total_seconds()))))
        modified = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
        response.headers["Last-Modified"] = format_datetime(modified, usegmt=True)
        return response

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        return JSONResponse({"status": status, "detail": _reason(status)}, status_code=status)

    routes = [
        Route("/", index, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/issuers/{name}.{suffix}", issuer_certificate, methods=["GET"]),
        Route("/crl/{name}.crl", crl, methods=["GET"]),
        Route("/crl/{issuer}/{file}", shard_crl, methods=["GET"]),
        *mounts,
    ]
    state.load_issuers()
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: http_error})


def _reason(status: int) -> str:
    return {404: "not found", 405: "method not allowed", 500: "internal error"}.get(status, "error")


Announce = Callable[[str], None]
