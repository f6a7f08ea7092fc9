"""A Candor ACME server on loopback for tests: the signer of a private test hierarchy behind the ACME front
end, uvicorn in a thread, validation through a static resolver to 127.0.0.x with loopback explicitly allowed,
and an http-01 responder on port 80 that the tests fill in."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS / "issuance"), str(TESTS / "validation")]

from issuing import CA, open_ca  # noqa: E402
from validation_fakes import FakeWebServer, LoopbackPool, Route  # noqa: E402

from candor.acme.app import acme_routes  # noqa: E402
from candor.acme.nonces import nonce_store  # noqa: E402
from candor.acme.service import AcmeService, AcmeSettings  # noqa: E402
from candor.ra.limits import Limits  # noqa: E402
from candor.validation import AddressPolicy, ChallengeValidator, StaticResolver  # noqa: E402
from candor.validation.validator import CaaCheck  # noqa: E402

NAMES = ("www.example.com", "example.com", "api.example.org")


@dataclass
class AcmeHarness:
    ca: CA
    directory: str
    responder_routes: dict[str, Route]
    responder_ip: str


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def acme_server(
    home: Path,
    names: tuple[str, ...] = NAMES,
    limits: Limits | None = None,
    caa: CaaCheck | None = None,
    **settings: Any,
) -> Iterator[AcmeHarness]:
    """*settings* override AcmeSettings fields (eab_secret, external_account_required, ...)."""
    ca = open_ca(home)
    responder_ip = LoopbackPool(first=200, last=250).take()
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    validator = ChallengeValidator(
        resolver=StaticResolver({name: [responder_ip] for name in names}),
        policy=AddressPolicy(allow_loopback=True),  # the explicit test allowance
        clock=ca.clock,
        timeout=5.0,
        caa=caa,
    )
    service = AcmeService(
        db=ca.db,
        clock=ca.clock,
        settings=AcmeSettings(
            base_url=base_url,
            issuer="tls-e1",
            limits=limits or Limits(),
            caa_identities=tuple(sorted(caa.ca_domains)) if caa else (),
            **settings,
        ),
        finalizer=ca.signer,
        validator=validator,
    )
    nonces = nonce_store(ca.db, ca.clock)  # candor serve's: in shared memory on SQLite
    app = Starlette(routes=acme_routes(service, nonces))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    responder = FakeWebServer(responder_ip, 80, {})
    try:
        yield AcmeHarness(
            ca=ca, directory=f"{base_url}/acme/directory", responder_routes=responder.routes, responder_ip=responder_ip
        )
    finally:
        responder.close()
        server.should_exit = True
        thread.join(timeout=10)
        nonces.close()
        ca.stores.close()
        ca.db.dispose()
