"""The TSA in ``candor serve``: ``POST /tsa`` on the main listener, the units' certificates at
``/tsa/units/{name}.der|pem``, and the unit keeper that picks up new units and records the TSA's transitions.

Every serving process (``[server] workers`` > 1 included) has its own service: the unit keys from its own key
stores, its own token recorder (group commit into the shared database) and its own serial allocator (a random
prefix per process, so serials stay unique across processes and restarts). The unit keeper runs in each
process, reading new units every ``unit_refresh_seconds``; only the primary's records audit events. The
time-stamping sub-CA's key is never opened here: ``candor tsa certify`` makes units.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from candor.cli.context import Context
from candor.keys import KeyAlgorithm, KeyStores
from candor.policy.algorithms import CAPrivateKey
from candor.timekeeping import ClockWatch
from candor.tsa.http import TsaApp
from candor.tsa.lifecycle import UnitKeeper
from candor.tsa.records import TokenRecorder
from candor.tsa.service import TsaService
from candor.tsa.token import TokenOptions
from candor.tsa.units import KeyLoader, UnitSet

log = logging.getLogger(__name__)
PATH = "/tsa"


def _nothing() -> None:
    return None


_UNIT_FILE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


@dataclass
class Tsa:
    """One serving process's TSA."""

    app: TsaApp
    keeper: UnitKeeper
    recorder: TokenRecorder
    url: str
    _stop: threading.Event = field(default_factory=threading.Event)

    def close(self) -> None:
        self._stop.set()
        self.recorder.close()


def key_loader(stores: KeyStores) -> KeyLoader:
    def load(store: str, handle: str, algorithm: str) -> CAPrivateKey:
        return stores.get(store).load(handle, KeyAlgorithm(algorithm))

    return load


def open_tsa(context: Context, stores: KeyStores, watch: ClockWatch, *, primary: bool) -> Tsa | None:
    """This process's TSA, or None when ``[tsa]`` is absent or no unit was ever certified. A unit that may not
    sign (not a compliant Timestamp certificate, or a key that is not the certified one) stops start-up."""
    settings = context.config.tsa
    if settings is None:
        return None
    options = TokenOptions(
        policy=settings.policy, accuracy_ms=settings.accuracy_ms, precision_digits=settings.precision_digits,
        include_chain=settings.include_chain, include_tsa_name=settings.include_tsa_name,
    )  # fmt: skip
    units = UnitSet()
    keeper = UnitKeeper(
        context.db, context.clock, units, load_key=key_loader(stores), options=options,
        warning=timedelta(days=settings.rotation_warning_days), primary=primary,
    )  # fmt: skip
    keeper.load()
    if keeper.known == 0:
        return None
    recorder = TokenRecorder(context.db)
    service = TsaService(
        policy=settings.policy, precision_digits=settings.precision_digits, units=units, recorder=recorder,
        watch=watch, clock=context.clock,
    )  # fmt: skip
    app = TsaApp(service, max_request_bytes=settings.max_request_bytes, path=PATH)
    return Tsa(app, keeper, recorder, f"{context.config.server.public_base_url}{PATH}")


def tsa_routes(context: Context, tsa: Tsa) -> list[BaseRoute]:
    """``/tsa`` (the bare app: every method reaches it, so that it answers 405 itself) and the unit certificates,
    published by ``candor tsa certify`` in ``public/tsa/`` and kept after the unit retires (for verifiers of
    tokens made without certReq)."""
    directory = context.public_dir / "tsa"

    async def unit_certificate(request: Request) -> Response:
        name, suffix = request.path_params["name"], request.path_params["suffix"]
        if not _UNIT_FILE.match(name) or suffix not in ("der", "pem"):
            raise HTTPException(404)
        try:
            body = (directory / f"{name}.{suffix}").read_bytes()
        except FileNotFoundError:
            raise HTTPException(404) from None
        media_type = "application/pkix-cert" if suffix == "der" else "application/x-pem-file"
        return Response(body, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})

    return [Route(PATH, tsa.app), Route(f"{PATH}/units/{{name}}.{{suffix}}", unit_certificate, methods=["GET"])]


def keeper_task(context: Context, tsa: Tsa) -> Callable[[], Awaitable[None]]:
    """For the primary worker: the unit keeper with its audit events (tsa.start ... tsa.stop), in a thread."""
    from candor.server import threaded_task

    def run(stop: threading.Event) -> None:
        tsa.keeper.start(tsa.url)
        try:
            _keep(context, tsa, stop)
        finally:
            tsa.keeper.stop(tsa.url)

    return threaded_task(run)


def follow_units(context: Context, tsa: Tsa) -> None:
    """For the other workers: the unit keeper in a daemon thread, until the TSA is closed."""
    threading.Thread(target=_keep, args=(context, tsa, tsa._stop), name="tsa-units", daemon=True).start()


def _keep(context: Context, tsa: Tsa, stop: threading.Event) -> None:
    settings = context.config.tsa
    assert settings is not None
    while not stop.wait(settings.unit_refresh_seconds):
        try:
            tsa.keeper.tick()
        except Exception:  # a database outage must not end the loop: the next pass retries
            log.exception("tsa: reading the units failed")


@dataclass(frozen=True)
class ServeParts:
    """What the TSA adds to one ``candor serve`` worker (nothing without ``[tsa]`` or a unit)."""

    routes: tuple[BaseRoute, ...] = ()
    background: tuple[Callable[[], Awaitable[None]], ...] = ()
    close: Callable[[], None] = _nothing
    url: str | None = None


def serve_parts(context: Context, stores: KeyStores, watch: ClockWatch, *, primary: bool) -> ServeParts:
    """This worker's TSA: its routes, the primary's keeper task (the other workers follow the units in a thread),
    and what closes it."""
    tsa = open_tsa(context, stores, watch, primary=primary)
    if tsa is None:
        return ServeParts()
    background: tuple[Callable[[], Awaitable[None]], ...] = ()
    if primary:
        background = (keeper_task(context, tsa),)
    else:
        follow_units(context, tsa)
    return ServeParts(tuple(tsa_routes(context, tsa)), background, tsa.close, tsa.url)


def probe(context: Context, stores: KeyStores, watch: ClockWatch) -> ServeParts:
    """For the parent of several workers: check the units as a worker will (a bad one stops start-up here, before
    any fork) and tell the TSA's URL; nothing keeps running."""
    tsa = open_tsa(context, stores, watch, primary=False)
    if tsa is None:
        return ServeParts()
    tsa.close()
    return ServeParts(url=tsa.url)


__all__ = ["ServeParts", "Tsa", "follow_units", "keeper_task", "open_tsa", "probe", "serve_parts", "tsa_routes"]
