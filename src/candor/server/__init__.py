"""``candor serve``: one process serving every role's HTTP endpoints."""

from __future__ import annotations

import socket
from pathlib import Path

import uvicorn

from candor.clock import Clock
from candor.config import CandorConfig
from candor.errors import CandorError, ErrorKind
from candor.server.app import Announce, ServerState, create_app
from candor.storage import Database

__all__ = ["ServerState", "create_app", "run_server"]


def run_server(
    *,
    config: CandorConfig,
    db: Database,
    clock: Clock,
    public_dir: Path,
    host: str | None,
    port: int | None,
    announce: Announce,
) -> None:
    bind_host = host or config.server.host
    bind_port = port if port is not None else config.server.port
    base_url = config.server.public_base_url
    state = ServerState(db=db, clock=clock, public_dir=public_dir, base_url=base_url)
    app = create_app(state)
    family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((bind_host, bind_port))
    except OSError as exc:
        sock.close()
        raise CandorError(ErrorKind.UNAVAILABLE, f"cannot listen on {bind_host}:{bind_port}: {exc.strerror}") from None
    announce(f"Candor is serving on http://{bind_host}:{bind_port}")
    announce(f"  health:  {base_url}/health")
    for name in sorted(state.issuer_der):
        announce(f"  issuer certificate (AIA caIssuers) {name}: {base_url}/issuers/{name}.der")
        if (public_dir / "crl" / f"{name}.crl").exists():
            announce(f"  CRL    {name}: {base_url}/crl/{name}.crl")
    server = uvicorn.Server(uvicorn.Config(app, log_level=config.logging.level.lower(), access_log=False))
    server.run(sockets=[sock])
