"""Issue 4 acceptance 4 at the ACME level: the WS-02 redirect rules and the WS-05 subdomain-versus-parent rule
end in no issuance, with the ACME error a client sees (the validator's own cases are in tests/validation)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from acme_harness import AcmeHarness, acme_server
from acme_raw import URN, Raw, expect_problem, route_for
from issuing import build_home, csr_for
from jose_requests import public_jwk_of
from validation_fakes import FakeWebServer, Route

from candor.acme.jwk import key_authorization

NAMES = ("example.com", "www.example.com", "shop.example.com", "api.example.org")


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AcmeHarness]:
    with acme_server(build_home(tmp_path_factory.mktemp("acme-ws")), names=NAMES) as running:
        yield running


def _order(client: Raw, *names: str) -> dict[str, object]:
    status, order, _ = client.post("/acme/new-order", {"identifiers": [{"type": "dns", "value": n} for n in names]})
    assert status == 201, order
    return order  # type: ignore[no-any-return]


def _authz(client: Raw, url: str) -> dict[str, object]:
    return client.post(urlsplit(url).path, None)[1]  # type: ignore[no-any-return]


def _answer_http01(harness: AcmeHarness, client: Raw, authz: dict[str, object], route: Route | None = None) -> dict:
    challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")  # type: ignore[attr-defined]
    path = f"/.well-known/acme-challenge/{challenge['token']}"
    harness.responder_routes[path] = route or route_for(
        key_authorization(challenge["token"], public_jwk_of(client.key_name))
    )
    return client.post(urlsplit(challenge["url"]).path, {})[1]  # type: ignore[no-any-return]


def _finalize(client: Raw, order: dict[str, object], *names: str) -> tuple[int, object, dict[str, str]]:
    csr = base64.urlsafe_b64encode(csr_for(list(names))).rstrip(b"=").decode()
    return client.post(urlsplit(str(order["finalize"])).path, {"csr": csr})


@pytest.mark.parametrize(
    "location",
    [
        "http://{name}:8080/.well-known/acme-challenge/{token}",  # WS-02b: a redirect to a high port
        "https://{name}:8443/.well-known/acme-challenge/{token}",
        "ftp://{name}/.well-known/acme-challenge/{token}",  # WS-02c: only http and https
    ],
)
def test_ws02_a_redirect_off_the_authorized_ports_is_an_invalid_challenge(harness: AcmeHarness, location: str) -> None:
    client = Raw(harness, f"p256_redirect{abs(hash(location)) % 10_000}").register()
    order = _order(client, "shop.example.com")
    authz = _authz(client, order["authorizations"][0])  # type: ignore[index]
    challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")  # type: ignore[attr-defined]
    target = location.format(name="shop.example.com", token=challenge["token"])
    high = FakeWebServer(
        harness.responder_ip, 8080, {f"/.well-known/acme-challenge/{challenge['token']}": route_for(
            key_authorization(challenge["token"], public_jwk_of(client.key_name)))},
    )  # fmt: skip
    try:
        answered = _answer_http01(harness, client, authz, Route(302, b"", (("Location", target),)))
    finally:
        high.close()
    assert answered["status"] == "invalid", answered
    assert answered["error"]["type"] in {URN + "connection", URN + "unauthorized"}, answered
    assert high.log.requests == []  # the high port was never asked
    expect_problem(_finalize(client, order, "shop.example.com"), "orderNotReady", 403)


def test_ws05_a_subdomain_proves_nothing_about_its_parent(harness: AcmeHarness) -> None:
    """WoSign "Incident 1": control of www.example.com was taken as control of example.com."""
    client = Raw(harness, "p256_subdomain").register()
    child = _order(client, "www.example.com")
    answered = _answer_http01(harness, client, _authz(client, child["authorizations"][0]))  # type: ignore[index]
    assert answered["status"] == "valid"
    # The parent gets its own pending authorization; the valid child authorization is not reused for it.
    parent = _order(client, "example.com")
    authz = _authz(client, parent["authorizations"][0])  # type: ignore[index]
    assert authz["status"] == "pending" and authz["identifier"] == {"type": "dns", "value": "example.com"}
    expect_problem(_finalize(client, parent, "example.com"), "orderNotReady", 403)
    # Nor does the child cover a sibling or a wildcard: both need their own proof.
    both = _order(client, "www.example.com", "shop.example.com")
    assert both["status"] == "pending"
    status, body, _ = client.post("/acme/new-order", {"identifiers": [{"type": "dns", "value": "*.example.com"}]})
    if status == 201:  # dns-01 offered: the wildcard's authorization is pending, with dns-01 only
        authz = _authz(client, body["authorizations"][0])
        assert authz["status"] == "pending" and {c["type"] for c in authz["challenges"]} == {"dns-01"}
    else:
        assert body["type"] == URN + "rejectedIdentifier"


def test_ws05_the_parent_csr_on_a_child_order_is_refused(harness: AcmeHarness) -> None:
    client = Raw(harness, "p256_csr_parent").register()
    order = _order(client, "www.example.com")
    answered = _answer_http01(harness, client, _authz(client, order["authorizations"][0]))  # type: ignore[index]
    assert answered["status"] == "valid"
    expect_problem(_finalize(client, order, "www.example.com", "example.com"), "badCSR", 400)
