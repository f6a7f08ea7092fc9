"""Rate limits answer rateLimited (HTTP 429) with Retry-After, counted from the stored records."""

from __future__ import annotations

from pathlib import Path

import pytest
from acme_harness import acme_server
from acme_raw import Raw, expect_problem, issued_certificate
from issuing import build_home

from candor.ra.limits import Limits


@pytest.fixture(scope="module")
def limits_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_home(tmp_path_factory.mktemp("acme-limits"))


def _order(client: Raw, name: str) -> tuple[int, dict[str, object], dict[str, str]]:
    return client.post("/acme/new-order", {"identifiers": [{"type": "dns", "value": name}]})


def _retry_after(reply: tuple[int, object, dict[str, str]]) -> int:
    return int(reply[2]["retry-after"])


def test_new_orders_per_account(limits_home: Path) -> None:
    with acme_server(limits_home, limits=Limits(orders_per_account=2)) as harness:
        client = Raw(harness, "p256").register()
        assert _order(client, "www.example.com")[0] == 201
        assert _order(client, "example.com")[0] == 201
        refused = _order(client, "api.example.org")
        expect_problem(refused, "rateLimited", 429)
        assert 0 < _retry_after(refused) <= 3 * 3600 + 1


def test_new_accounts_per_address(tmp_path: Path) -> None:
    with acme_server(build_home(tmp_path / "home"), limits=Limits(accounts_per_address=1)) as harness:
        Raw(harness, "p384", "ES384").register()  # the one account 127.0.0.1 may open in the window
        reply = Raw(harness, "rsa2048_b", "RS256").post("/acme/new-account", {"termsOfServiceAgreed": True})
        expect_problem(reply, "rateLimited", 429)


def test_failed_validations_per_name(limits_home: Path) -> None:
    with acme_server(limits_home, limits=Limits(failed_validations_per_name=1)) as harness:
        client = Raw(harness, "p256_b").register()
        for attempt in range(2):
            _status, order, _headers = _order(client, "api.example.org")
            _, authz, _ = client.post(_path(order["authorizations"][0]), None)  # type: ignore[index]
            challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
            reply = client.post(_path(challenge["url"]), {})  # nothing answers on port 80: it fails
            if attempt == 0:
                assert reply[1]["status"] == "invalid"  # type: ignore[index]
            else:
                expect_problem(reply, "rateLimited", 429)


def test_certificates_per_registered_domain(limits_home: Path) -> None:
    with acme_server(limits_home, limits=Limits(certificates_per_registered_domain=1)) as harness:
        client = Raw(harness, "ed25519", "EdDSA").register()
        issued_certificate(harness, client, "www.example.com")  # the first certificate for example.com
        expect_problem(_order(client, "example.com"), "rateLimited", 429)
        assert _order(client, "api.example.org")[0] == 201  # another registered domain is not limited


def _path(url: object) -> str:
    from urllib.parse import urlsplit

    return urlsplit(str(url)).path
