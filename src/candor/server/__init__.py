"""``candor serve``: one process serving every role's HTTP endpoints.

Plain HTTP carries what relying parties fetch without a TLS chain to check first (AIA caIssuers, CRLs, the
health endpoint); ACME, when mounted, has its own HTTPS listener (RFC 8555 6.1: ACME is served over HTTPS).
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from candor.clock import Clock
from candor.config import CandorConfig
from candor.errors import CandorError, ErrorKind
from candor.server.app import Announce, ServerState, create_app
from candor.storage import Database

__all__ = ["AcmeListener", "ServerState", "create_app", "run_server"]


@dataclass(frozen=True)
class AcmeListener:
    routes: list[BaseRoute]
    port: int
    certfile: Path
    keyfile: Path
    keyfile_password: str
    directory_url: str


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CandorError(ErrorKind.UNAVAILABLE, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(socket.SOMAXCONN)  # connections queue from the moment the URLs are announced
    return sock


def run_server(
    *,
    config: CandorConfig,
    db: Database,
    clock: Clock,
    public_dir: Path,
    host: str | None,
    port: int | None,
    announce: Announce,
    acme: AcmeListener | None = None,
) -> None:
    bind_host = host or config.server.host
    bind_port = port if port is not None else config.server.port
    base_url = config.server.public_base_url
    state = ServerState(db=db, clock=clock, public_dir=public_dir, base_url=base_url)
    app = create_app(state)
    sock = _listen(bind_host, bind_port)
    acme_sock = _listen(bind_host, acme.port) if acme is not None else None
    announce(f"Candor is serving on http://{bind_host}:{bind_port}")
    announce(f"  health:  {base_url}/health")
    for name in sorted(state.issuer_der):
        announce(f"  issuer certificate (AIA caIssuers) {name}: {base_url}/issuers/{name}.der")
        if (public_dir / "crl" / f"{name}.crl").exists():
            announce(f"  CRL    {name}: {base_url}/crl/{name}.crl")
    level = config.logging.level.lower()
    servers = [(uvicorn.Server(uvicorn.Config(app, log_level=level, access_log=False)), sock)]
    if acme is not None and acme_sock is not None:
        announce(f"  ACME directory: {acme.directory_url}")
        announce(
            f"  e.g. REQUESTS_CA_BUNDLE=<root PEM> certbot certonly --standalone --server {acme.directory_url} -d NAME"
        )
        acme_app = Starlette(routes=acme.routes)
        acme_config = uvicorn.Config(
            acme_app,
            log_level=level,
            access_log=False,
            ssl_certfile=str(acme.certfile),
            ssl_keyfile=str(acme.keyfile),
            ssl_keyfile_password=acme.keyfile_password,
        )
        servers.append((uvicorn.Server(acme_config), acme_sock))
    asyncio.run(_serve_all(servers))


async def _serve_all(servers: list[tuple[uvicorn.Server, socket.socket]]) -> None:
    """Run the listeners together; when one stops (a signal reaches the last one installed), stop them all."""
    tasks = [asyncio.create_task(server.serve(sockets=[sock])) for server, sock in servers]
    _done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for server, _sock in servers:
        server.should_exit = True
    await asyncio.gather(*pending, return_exceptions=True)
