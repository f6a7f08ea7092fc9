"""The OCSP responder in ``candor serve``: routes for every TLS issuer's URL, the in-memory index of pre-signed
responses each worker answers from, and (in the primary only) the pre-signer that keeps them current. With
``[ocsp] nonce = "sign"`` every worker also signs, with its own key stores, the requests that carry a nonce.

Certificates name ``{server.public_base_url}/ocsp/{issuer}`` when ``[issuance] ocsp_urls`` is on; one index answers
for every issuer (it is keyed by issuerKeyHash and serial). The plain-HTTP listener runs the responder's own HTTP
protocol (:mod:`candor.revocation.ocsp.protocol`), which answers the pre-signed responses' own requests without
going through Starlette; every other request, nonced and malformed ones included, goes to the routes. The primary
worker pre-signs a response for each newly issued certificate or precertificate, and again after a revocation or at
half its validity (``OcspSigner.presign_new``), rotates the delegated responder certificates, and publishes what it
signs into its own index; other workers (``[server] workers`` > 1) follow the database. With ``[ocsp.redis]``,
responses are shared through Redis as well.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from starlette.routing import BaseRoute, Route

from candor.cli.context import Context
from candor.errors import CandorError
from candor.keys import KeyStores
from candor.revocation.ocsp.http import OcspApp
from candor.revocation.ocsp.index import ResponseIndex, load_from_database
from candor.revocation.ocsp.protocol import OcspProtocol
from candor.server import threaded_task
from candor.storage.models import Issuer
from candor.timekeeping import ClockWatch

if TYPE_CHECKING:
    from candor.revocation.ocsp.ondemand import NonceSigner
    from candor.revocation.ocsp.presign import ResponseSink
    from candor.revocation.ocsp.shared import Follower, RedisResponses

log = logging.getLogger(__name__)
PRESIGN_IDLE_SECONDS = 0.5  # how soon a new certificate or a revocation has its response, at most
FOLLOW_SECONDS = 1.0  # how often a non-primary worker reads newly signed responses
ROTATION_CHECK = timedelta(hours=1)


@dataclass
class Responder:
    """What one serving process answers from: its in-memory index (filled from the database at start-up, newest
    thisUpdate *since*), and Redis when ``[ocsp.redis]`` shares responses between nodes."""

    index: ResponseIndex
    since: datetime | None
    shared: RedisResponses | None = None
    follower: Follower | None = None
    on_demand: NonceSigner | None = None

    def close(self) -> None:
        if self.follower is not None:
            self.follower.stop()
        if self.shared is not None:
            self.shared.close()
        if self.on_demand is not None:
            self.on_demand.close()


def open_responder(context: Context, stores: KeyStores, clock_watch: ClockWatch | None = None) -> Responder:
    """This process's responder. With ``[ocsp] nonce = "sign"`` it signs nonce requests itself, with the
    responder keys of *stores* (this process's own: a forked worker opens its stores anew)."""
    settings = context.config.ocsp
    index = ResponseIndex()
    since = load_from_database(context.db, index)
    on_demand = None
    if settings.nonce == "sign":
        from candor.revocation.ocsp.ondemand import NonceSigner

        on_demand = NonceSigner(context.db, stores, context.clock, settings, clock_watch=clock_watch)
    if settings.redis is None:
        return Responder(index, since, on_demand=on_demand)
    from candor.revocation.ocsp.shared import RedisResponses

    shared = RedisResponses(settings.redis)
    # Responses another node signs (a revocation) replace this node's at once.
    return Responder(index, since, shared, shared.follow(index), on_demand)


@dataclass(frozen=True)
class Endpoints:
    """What ``candor serve``'s plain-HTTP listener serves for the responder: the Starlette *routes* of every TLS
    issuer's URL, and the uvicorn *protocol* that answers their pre-signed responses itself (the routes answer
    every other request on the same port)."""

    routes: list[BaseRoute]
    protocol: type[OcspProtocol]


def responder_endpoints(context: Context, responder: Responder) -> Endpoints:
    """``/ocsp/{issuer}`` (GET with the base64 request in the path, POST) for every TLS issuer."""
    with context.db.session() as session:
        names = list(session.scalars(select(Issuer.name).where(Issuer.kind == "tls").order_by(Issuer.name)))
    routes: list[BaseRoute] = []
    apps = []
    for name in names:
        # The bare ASGI app as each route's endpoint: no redirect of a POST to ".../" (a Mount's), and the
        # GET path is read by the responder itself (RFC 6960 A.1: the request may contain '/').
        app = OcspApp(
            responder.index, context.config.ocsp, clock=context.clock, prefix=f"/ocsp/{name}",
            remote=responder.shared, on_demand=responder.on_demand,
        )  # fmt: skip
        apps.append(app)
        routes.append(Route(f"/ocsp/{name}", app, methods=["GET", "POST"]))
        routes.append(Route(f"/ocsp/{name}/{{request:path}}", app, methods=["GET", "POST"]))
    return Endpoints(routes, OcspProtocol.serving(apps))


def presign_task(
    context: Context, stores: KeyStores, responder: Responder, clock_watch: ClockWatch | None = None
) -> Callable[[], Awaitable[None]]:
    """For the primary worker: pre-sign what is due, in a thread, for as long as the server serves."""
    from candor.revocation.ocsp.presign import OcspSigner

    sinks: list[ResponseSink] = [responder.index]
    if responder.shared is not None:
        sinks.append(responder.shared)
    signer = OcspSigner(context.db, stores, context.clock, context.config.ocsp, sinks=sinks, clock_watch=clock_watch)

    def run(stop: threading.Event) -> None:
        next_rotation = context.clock.now()
        while not stop.is_set():
            try:
                if context.clock.now() >= next_rotation:
                    for label in signer.rotate_responders():
                        log.info("ocsp: new delegated responder %s", label)
                    next_rotation = context.clock.now() + ROTATION_CHECK
                if signer.presign_new() == 0:
                    stop.wait(PRESIGN_IDLE_SECONDS)
            except CandorError as exc:  # the clock distrusted (logged by the watch), a key store out: wait
                log.warning("ocsp: nothing pre-signed in this pass: %s", exc.message)
                stop.wait(5.0)
            except Exception:  # a database outage must not end the loop: the next pass retries
                log.exception("ocsp: this pre-signing pass failed")
                stop.wait(5.0)

    return threaded_task(run)


def follow_database(context: Context, responder: Responder) -> threading.Event:
    """For the other workers: a daemon thread reading the responses the primary signs into this worker's
    index; set the returned event to stop it."""
    stop = threading.Event()

    def run() -> None:
        newest = responder.since
        while not stop.wait(FOLLOW_SECONDS):
            try:
                newest = load_from_database(context.db, responder.index, since=newest) or newest
            except Exception:
                log.exception("ocsp: reading new responses failed")

    threading.Thread(target=run, name="ocsp-follower", daemon=True).start()
    return stop
