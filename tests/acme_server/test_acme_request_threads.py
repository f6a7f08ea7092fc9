"""Where the ACME edge (candor.acme.app) runs each request's handler: a POST-as-GET of an order, an authorization
or a certificate on the event loop when neither its read nor the nonces can wait (SQLite, the nonces in shared
memory); anything that writes, validates or signs on a request thread; and every handler on a request thread
when the nonces live in the database, whose exchange waits for a commit."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from acme_harness import acme_server
from acme_raw import Raw, issued_certificate
from issuing import build_home

from candor.acme.challenges import Challenges
from candor.acme.nonces import NonceStore
from candor.acme.ordering import Ordering
from candor.acme.shared_nonces import SharedNonces

RECORDED = {
    "new_order": Ordering,
    "order": Ordering,
    "finalize": Ordering,
    "certificate": Ordering,
    "authorization": Challenges,
    "challenge": Challenges,
}


@pytest.fixture(scope="module")
def acme_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_home(tmp_path_factory.mktemp("acme-threads"))


@pytest.fixture
def threads_of(monkeypatch: pytest.MonkeyPatch) -> dict[str, set[str]]:
    """The names of the threads each recorded handler ran on, and whether it ran on the event loop."""
    seen: dict[str, set[str]] = defaultdict(set)
    for name, owner in RECORDED.items():
        original = getattr(owner, name)

        def recording(self: Any, *args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
            try:
                asyncio.get_running_loop()
                seen[_name].add("event loop")
            except RuntimeError:
                seen[_name].add(threading.current_thread().name.split("_")[0])
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(owner, name, recording)
    return seen


def _whole_order(acme_home: Path, key_name: str) -> None:
    with acme_server(acme_home) as harness:
        client = Raw(harness, key_name).register()
        issued_certificate(harness, client, "www.example.com")
        status, order, headers = client.post(
            "/acme/new-order", {"identifiers": [{"type": "dns", "value": "example.com"}]}
        )
        assert status == 201
        order_path = urlsplit(headers["location"]).path
        assert client.post(order_path, None)[0] == 200  # POST-as-GET of the order
        # a POST with a payload to the authorization writes (deactivation), so it goes to a request thread
        authorization = urlsplit(order["authorizations"][0]).path
        status, body, _ = client.post(authorization, {"status": "deactivated"})
        assert status == 200 and body["status"] == "deactivated"


def test_reads_run_on_the_event_loop_and_writes_on_request_threads(
    acme_home: Path, threads_of: dict[str, set[str]]
) -> None:
    _whole_order(acme_home, "p256_inline")
    assert threads_of["order"] == {"event loop"}
    assert threads_of["certificate"] == {"event loop"}
    assert threads_of["authorization"] == {"event loop", "acme-request"}  # the read, then the deactivation
    for handler in ("new_order", "challenge", "finalize"):
        assert threads_of[handler] == {"acme-request"}, handler


def test_with_the_databases_nonces_every_handler_runs_on_a_request_thread(
    acme_home: Path, threads_of: dict[str, set[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the CA database's own nonce store (the one PostgreSQL deployments use), here on the test CA's SQLite
    monkeypatch.setattr("acme_harness.nonce_store", lambda db, clock: NonceStore(db, clock))
    _whole_order(acme_home, "p256_hop")
    for handler in RECORDED:
        assert threads_of[handler] == {"acme-request"}, handler


@pytest.mark.postgres
def test_on_postgresql_reads_run_on_request_threads_even_with_the_nonces_in_memory(
    tmp_path: Path, postgres_schema_url: str, threads_of: dict[str, set[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PostgreSQL read is a network round trip, which the event loop must not wait for: with the nonces in shared
    memory (which alone would allow it on SQLite), every handler still runs on a request thread."""
    monkeypatch.setattr("acme_harness.nonce_store", lambda db, clock: SharedNonces(clock))
    _whole_order(build_home(tmp_path / "pg", database=postgres_schema_url), "p256_postgres")
    for handler in RECORDED:
        assert threads_of[handler] == {"acme-request"}, handler
