"""A whole ACME order with certbot's own client library (acme.client.ClientV2): account, order, http-01 on
port 80 through Candor's validation client, finalize through the signer, certificate download."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path

import josepy
import pytest
from acme import challenges, client, errors, messages
from acme_harness import AcmeHarness, acme_server
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from issuing import build_home, csr_for
from validation_fakes import Route

from support import record_issued


@pytest.fixture(scope="module")
def acme_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_home(tmp_path_factory.mktemp("acme"))


@pytest.fixture
def harness(acme_home: Path) -> Iterator[AcmeHarness]:
    with acme_server(acme_home) as running:
        yield running


def _client(harness: AcmeHarness, *, email: str = "ops@example.com") -> client.ClientV2:
    key = josepy.JWKRSA(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    network = client.ClientNetwork(key, user_agent="candor-tests", verify_ssl=False)
    directory = client.ClientV2.get_directory(harness.directory, network)
    acme = client.ClientV2(directory, network)
    acme.new_account(messages.NewRegistration.from_data(email=email, terms_of_service_agreed=True))
    return acme


def _pem_csr(names: list[str]) -> bytes:
    der = csr_for(names)
    return x509.load_der_x509_csr(der).public_bytes(serialization.Encoding.PEM)


def _answer_http01(acme: client.ClientV2, harness: AcmeHarness, order: messages.OrderResource) -> None:
    for authorization in order.authorizations:
        challenge = next(c for c in authorization.body.challenges if isinstance(c.chall, challenges.HTTP01))
        response, validation = challenge.response_and_validation(acme.net.key)
        harness.responder_routes["/" + challenge.chall.path.lstrip("/")] = Route(200, validation.encode())
        acme.answer_challenge(challenge, response)


def test_certbot_acme_client_gets_a_certificate_for_two_names(harness: AcmeHarness) -> None:
    acme = _client(harness)
    order = acme.new_order(_pem_csr(["www.example.com", "example.com"]))
    assert len(order.authorizations) == 2
    _answer_http01(acme, harness, order)
    deadline = datetime.datetime.now() + datetime.timedelta(seconds=30)  # noqa: DTZ005 (the acme library's API)
    finished = acme.poll_and_finalize(order, deadline)
    chain = x509.load_pem_x509_certificates(finished.fullchain_pem.encode())
    leaf = chain[0]
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sorted(names) == ["example.com", "www.example.com"]
    assert chain[1].subject == leaf.issuer
    record_issued(leaf, tuple(chain[1:]), harness.ca.root_pem)
    # the validation was recorded as ACME http-01 (BR 3.2.2.4.19) on the authorization the signer re-checked
    with harness.ca.db.session() as session:
        from sqlalchemy import select

        from candor.storage.models_issuance import Authorization

        methods = {a.method for a in session.scalars(select(Authorization).where(Authorization.status == "valid"))}
    assert "3.2.2.4.19" in methods


def test_wrong_key_authorization_is_an_invalid_authorization(harness: AcmeHarness) -> None:
    acme = _client(harness)
    order = acme.new_order(_pem_csr(["api.example.org"]))
    authorization = order.authorizations[0]
    challenge = next(c for c in authorization.body.challenges if isinstance(c.chall, challenges.HTTP01))
    response, _validation = challenge.response_and_validation(acme.net.key)
    harness.responder_routes["/" + challenge.chall.path.lstrip("/")] = Route(200, b"not the key authorization")
    answered = acme.answer_challenge(challenge, response)
    assert answered.body.status == messages.STATUS_INVALID
    assert answered.body.error.typ == "urn:ietf:params:acme:error:incorrectResponse"
    updated, _ = acme.poll(authorization)
    assert updated.body.status == messages.STATUS_INVALID
    with pytest.raises(errors.Error):
        acme.finalize_order(order, datetime.datetime.now() + datetime.timedelta(seconds=5))  # noqa: DTZ005


def test_a_name_no_certificate_may_carry_is_a_rejected_identifier(harness: AcmeHarness) -> None:
    acme = _client(harness)
    with pytest.raises(messages.Error) as caught:
        acme.new_order(_pem_csr(["ex_ample.com"]))  # BR 7.1.2.7.12: no underscores, even on a private issuer
    assert caught.value.typ == "urn:ietf:params:acme:error:rejectedIdentifier"


def test_finalize_before_ready_is_order_not_ready(harness: AcmeHarness) -> None:
    acme = _client(harness)
    order = acme.new_order(_pem_csr(["www.example.com"]))  # a new account: its authorization is pending
    with pytest.raises(messages.Error) as caught:
        acme.begin_finalization(order)
    assert caught.value.typ == "urn:ietf:params:acme:error:orderNotReady"


def test_accounts_are_found_again_by_key(harness: AcmeHarness) -> None:
    acme = _client(harness)
    again = acme.query_registration(acme.net.account)
    assert again.body.status == "valid"
    ec_key = josepy.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    network = client.ClientNetwork(ec_key, alg=josepy.ES256, user_agent="candor-tests", verify_ssl=False)
    other = client.ClientV2(client.ClientV2.get_directory(harness.directory, network), network)
    created = other.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))
    assert created.uri != acme.net.account.uri


def test_ws02a_a_key_authorization_on_a_high_port_does_not_count(harness: AcmeHarness) -> None:
    """WoSign "Incident 0": only port 80 is asked; a file served on :8080 or :50001 proves nothing."""
    from validation_fakes import FakeWebServer

    acme = _client(harness)
    order = acme.new_order(_pem_csr(["api.example.org"]))
    challenge = next(c for c in order.authorizations[0].body.challenges if isinstance(c.chall, challenges.HTTP01))
    response, validation = challenge.response_and_validation(acme.net.key)
    path = "/" + challenge.chall.path.lstrip("/")
    harness.responder_routes.pop(path, None)  # port 80 answers 404
    servers = [
        FakeWebServer(harness.responder_ip, port, {path: Route(200, validation.encode())}) for port in (8080, 50001)
    ]
    try:
        answered = acme.answer_challenge(challenge, response)
    finally:
        for server in servers:
            server.close()
    assert answered.body.status == messages.STATUS_INVALID
    assert all(server.log.requests == [] for server in servers)
    with pytest.raises(messages.Error) as caught:
        acme.begin_finalization(order)
    assert caught.value.typ == "urn:ietf:params:acme:error:orderNotReady"


def test_ws05g_one_unvalidated_name_of_many_blocks_the_order(acme_home: Path) -> None:
    names = tuple(f"n{i}.example.com" for i in range(100))
    with acme_server(acme_home, names=names) as running:
        acme = _client(running)
        order = acme.new_order(_pem_csr(list(names)))
        for authorization in order.authorizations:
            challenge = next(c for c in authorization.body.challenges if isinstance(c.chall, challenges.HTTP01))
            response, validation = challenge.response_and_validation(acme.net.key)
            if authorization.body.identifier.value != "n99.example.com":  # the one name not proven
                running.responder_routes["/" + challenge.chall.path.lstrip("/")] = Route(200, validation.encode())
            acme.answer_challenge(challenge, response)
        with pytest.raises(messages.Error) as caught:
            acme.begin_finalization(order)
        assert caught.value.typ == "urn:ietf:params:acme:error:orderNotReady"
