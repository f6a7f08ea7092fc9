"""``candor serve``: every role's HTTP endpoints, from one process or from several worker processes.

Plain HTTP carries what relying parties fetch without a TLS chain to check first (AIA caIssuers, CRLs, the
health endpoint); ACME, when mounted, has its own HTTPS listener (RFC 8555 6.1: ACME is served over HTTPS).

The listening sockets are bound once, before anything is served. With ``[server] workers = 1`` the calling
process serves them itself; with more, :mod:`.workers` forks that many processes which each serve every
socket, and the caller supervises them. Whatever holds process state (database connections, key stores, the
signer, the ACME service) is made by the caller's :data:`Build`, called in the process that serves, after the
fork; background singletons go in ``Worker.background`` and run in the primary worker only.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import FrameType

import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from candor.audit.sequencer import AuditSequencer
from candor.clock import Clock
from candor.config import CandorConfig
from candor.errors import CandorError, ErrorKind
from candor.server.app import Announce, ServerState, create_app
from candor.server.workers import PRIMARY_SLOT, supervise
from candor.storage import Database

__all__ = ["PRIMARY_SLOT", "AcmeListener", "Build", "ServerState", "Worker", "create_app", "run_server"]
log = logging.getLogger(__name__)
# How long a thread may keep the GIL while another waits for it (CPython's default: 5 ms). A request thread
# back from a database round trip holds the database's write queue (SQLite) or the audit chain's lock, so
# every millisecond it waits for the GIL behind a CPU-bound thread (pkilint, TLS) delays every process's
# writers: bench/acme.py with 2 workers went from about 15 to 20 orders/s at 1 ms.
SWITCH_INTERVAL_SECONDS = 0.001
# The cyclic garbage collector in a serving process: the start-up heap (modules, the linter's validators, caches)
# is frozen once the worker is built (gc.freeze: never walked again by an oldest-generation pass), and the
# youngest generation is collected after this many new container objects instead of CPython's 700 (reference
# counting still frees at once everything that is not in a cycle). perf under bench/acme.py: the collector's
# share of the server's CPU went from about 2 % to 1 %.
GC_THRESHOLDS = (10_000, 10, 10)


@dataclass(frozen=True)
class AcmeListener:
    routes: list[BaseRoute]
    port: int
    certfile: Path
    keyfile: Path
    keyfile_password: str
    directory_url: str


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Worker:
    """What one serving process serves, made in that process: the database of the plain-HTTP routes, the ACME
    listener (its routes; its certificate and port must be those the parent announced) and the background
    singletons, coroutines run beside the listeners in the primary worker only and for as long as it serves.
    *close* runs when the process stops serving."""

    db: Database
    acme: AcmeListener | None = None
    routes: tuple[BaseRoute, ...] = ()  # more plain-HTTP routes: the CT logs this process serves
    background: tuple[Callable[[], Awaitable[None]], ...] = ()
    close: Callable[[], None] = field(default=_nothing)
    # The plain-HTTP listener's uvicorn protocol class (the OCSP responder's, which answers pre-signed responses
    # itself and hands every other request to the routes); None: uvicorn's default
    protocol: type[asyncio.Protocol] | None = None


def threaded_task(run: Callable[[threading.Event], None]) -> Callable[[], Awaitable[None]]:
    """A background singleton made of a blocking loop: *run(stop)* in a worker thread, returning once *stop* is
    set, which happens when the task is cancelled (the server stops)."""

    async def task() -> None:
        stop = threading.Event()
        try:
            await asyncio.to_thread(run, stop)
        finally:
            stop.set()

    return task


Build = Callable[[bool], Worker]  # called with primary=True in exactly one serving process at a time


def _listen(host: str, port: int, *, shared_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets that say they are
    # TCP; with it on, a response written in two parts waited for the client's delayed ACK, 40 ms per request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CandorError(ErrorKind.UNAVAILABLE, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(socket.SOMAXCONN)  # connections queue from the moment the URLs are announced
    return sock


def _listen_per_worker(host: str, port: int, workers: int) -> list[socket.socket]:
    """One listening socket per worker slot, all on one port (``SO_REUSEPORT``): the kernel spreads new
    connections over them evenly. One socket shared by every worker would not: an event loop woken by a
    burst of connections accepts all of them, so long-lived keep-alive connections piled up in one worker.

    A socket without ``SO_REUSEPORT`` is bound first and closed, so that a port already in use (by another
    ``candor serve`` too) is refused as with one worker instead of silently shared. A worker's socket stays
    open in the supervisor, so connections queued while the worker restarts are served by its replacement."""
    if workers == 1 or port == 0 or not hasattr(socket, "SO_REUSEPORT"):
        return [_listen(host, port)] * workers
    _listen(host, port).close()
    return [_listen(host, port, shared_port=True) for _ in range(workers)]


def run_server(
    *,
    config: CandorConfig,
    db: Database,
    clock: Clock,
    public_dir: Path,
    host: str | None,
    port: int | None,
    announce: Announce,
    build: Build,
    acme: AcmeListener | None = None,
    workers: int | None = None,
) -> int:
    """Bind, announce, then serve: in this process (one worker) or from *workers* forked processes. *db* and
    *acme* are the caller's, used here only to announce what is served; with several workers *db* is disposed
    before the fork. Returns the exit code once stopped by SIGTERM or SIGINT."""
    bind_host = host or config.server.host
    bind_port = port if port is not None else config.server.port
    count = workers if workers is not None else config.server.workers
    base_url = config.server.public_base_url
    socks = _listen_per_worker(bind_host, bind_port, count)
    acme_socks = _listen_per_worker(bind_host, acme.port, count) if acme is not None else None
    announce(f"Candor is serving on http://{bind_host}:{bind_port}")
    announce(f"  health:  {base_url}/health")
    state = ServerState(db=db, clock=clock, public_dir=public_dir, base_url=base_url)
    state.load_issuers()
    for name in sorted(state.issuer_der):
        announce(f"  issuer certificate (AIA caIssuers) {name}: {base_url}/issuers/{name}.der")
        if (public_dir / "crl" / f"{name}.crl").exists():
            announce(f"  CRL    {name}: {base_url}/crl/{name}.crl")
    if acme is not None:
        announce(f"  ACME directory: {acme.directory_url}")
        announce(
            f"  e.g. REQUESTS_CA_BUNDLE=<root PEM> certbot certonly --standalone --server {acme.directory_url} -d NAME"
        )
    serve = partial(
        _serve_worker,
        build=build,
        config=config,
        clock=clock,
        public_dir=public_dir,
        socks=socks,
        acme_socks=acme_socks,
        acme_port=acme.port if acme is not None else None,
    )
    if count == 1:
        return serve(PRIMARY_SLOT)
    bind_cores = config.server.cpu_affinity == "auto"
    announce(f"  {count} worker processes" + (", each bound to a core" if bind_cores else ""))
    db.dispose()  # no pooled connection crosses the fork
    return supervise(count, serve, bind_cores=bind_cores)


class _Stop:
    """SIGTERM/SIGINT before the listeners start, and after they stop: no server yet or any more to tell, so
    remember it (uvicorn re-raises the signal that stopped it once it has restored the handlers it replaced)."""

    def __init__(self) -> None:
        self.requested = False
        self.servers: list[uvicorn.Server] = []

    def __call__(self, _signum: int, _frame: FrameType | None) -> None:
        self.requested = True
        for server in self.servers:
            server.should_exit = True


def _serve_worker(
    slot: int,
    *,
    build: Build,
    config: CandorConfig,
    clock: Clock,
    public_dir: Path,
    socks: list[socket.socket],
    acme_socks: list[socket.socket] | None,
    acme_port: int | None,
) -> int:
    """Serve slot *slot*'s sockets until stopped; the exit code."""
    sock, acme_sock = socks[slot], acme_socks[slot] if acme_socks is not None else None
    primary = slot == PRIMARY_SLOT
    stop = _Stop()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    thresholds = gc.get_threshold()
    try:
        worker = build(primary)
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        # Every serving process leaves its audit events pending; the primary's sequencer chains them.
        worker.db.audit_sequenced = True
        try:
            if stop.requested:
                return 0
            if (worker.acme is None) != (acme_sock is None) or (worker.acme and worker.acme.port != acme_port):
                raise CandorError(ErrorKind.INTERNAL, "the worker's ACME listener is not the one announced")
            base_url = config.server.public_base_url
            state = ServerState(db=worker.db, clock=clock, public_dir=public_dir, base_url=base_url)
            level = config.logging.level.lower()
            app = create_app(state, mounts=worker.routes)
            http = worker.protocol or "auto"
            servers = [(uvicorn.Server(uvicorn.Config(app, http=http, log_level=level, access_log=False)), sock)]
            if worker.acme is not None and acme_sock is not None:
                acme_config = uvicorn.Config(
                    Starlette(routes=worker.acme.routes),
                    log_level=level,
                    access_log=False,
                    ssl_certfile=str(worker.acme.certfile),
                    ssl_keyfile=str(worker.acme.keyfile),
                    ssl_keyfile_password=worker.acme.keyfile_password,
                )
                servers.append((uvicorn.Server(acme_config), acme_sock))
            stop.servers = [server for server, _sock in servers]
            background: tuple[Callable[[], Awaitable[None]], ...] = ()
            if primary:
                background = (*worker.background, AuditSequencer(worker.db))
            # uvloop when installed (uvicorn's loop="auto"), as uvicorn.run would choose
            with asyncio.Runner(loop_factory=servers[0][0].config.get_loop_factory()) as runner:
                return runner.run(_serve_all(servers, background))
        finally:
            worker.close()
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        sys.setswitchinterval(interval)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


async def _serve_all(
    servers: list[tuple[uvicorn.Server, socket.socket]], background: tuple[Callable[[], Awaitable[None]], ...]
) -> int:
    """Run the listeners and the background singletons together; when a listener stops (a signal reaches the
    last one installed) or a singleton fails, stop them all. A failed singleton ends the worker with code 1,
    so that the supervisor starts it again."""
    tasks = {asyncio.create_task(server.serve(sockets=[sock])) for server, sock in servers}
    singletons = {asyncio.create_task(_run(job)) for job in background}
    code = 0
    pending = tasks | singletons
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if done & tasks:
            for task in done & tasks:
                if task.exception() is not None:
                    log.error("listener failed", exc_info=task.exception())
                    code = 1
            break
        if any(task.result() for task in done):
            code = 1
            break
    for server, _sock in servers:
        server.should_exit = True
    for task in singletons:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return code


async def _run(job: Callable[[], Awaitable[None]]) -> bool:
    """A background singleton; True if it failed."""
    try:
        await job()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("background task %s failed; stopping this worker", getattr(job, "__name__", job))
        return True
    return False
