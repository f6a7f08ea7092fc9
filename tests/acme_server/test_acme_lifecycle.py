"""External account binding enforced in newAccount (RFC 8555 7.3.4), renewal information and `replaces`
(RFC 9773), and revocation by an account that holds authorizations for every name (RFC 8555 7.6)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from acme import messages
from acme_harness import AcmeHarness, acme_server
from acme_raw import URN, Raw, expect_problem, issued_certificate, route_for
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from issuing import build_home
from jose_requests import b64, jose_key, public_jwk_of

from candor.acme import ari, eab
from candor.acme.jwk import key_authorization
from candor.ra.limits import Limits
from candor.storage.models_acme import ExternalAccountKey

EAB_SECRET = "s" * 40


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AcmeHarness]:
    home = build_home(tmp_path_factory.mktemp("acme-lifecycle"))
    with acme_server(home, limits=Limits(accounts_per_address=1000)) as running:
        yield running


@pytest.fixture(scope="module")
def eab_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AcmeHarness]:
    home = build_home(tmp_path_factory.mktemp("acme-eab"))
    with acme_server(home, eab_secret=EAB_SECRET, external_account_required=True) as running:
        yield running


def _new_kid(harness: AcmeHarness, label: str = "customer") -> str:
    with harness.ca.db.session() as session:
        return eab.create_key(session, label=label, now=harness.ca.clock.now()).kid


def _binding(client: Raw, kid: str, mac: bytes | None = None) -> dict[str, Any]:
    made = messages.ExternalAccountBinding.from_data(
        account_public_key=jose_key(client.key_name).public_key(),
        kid=kid,
        hmac_key=b64(mac if mac is not None else eab.mac_key(EAB_SECRET, kid)),
        directory={"newAccount": client.origin + "/acme/new-account"},
    )
    return dict(made)


def _new_account(client: Raw, binding: dict[str, Any] | None) -> tuple[int, Any, dict[str, str]]:
    payload: dict[str, Any] = {"termsOfServiceAgreed": True}
    if binding is not None:
        payload["externalAccountBinding"] = binding
    return client.post("/acme/new-account", payload, use_jwk=True)


# -- external account binding --------------------------------------------------------------------------------


def test_directory_says_an_external_account_is_required(eab_harness: AcmeHarness) -> None:
    _, directory, _ = Raw(eab_harness, "p256").request("GET", "/acme/directory")
    assert directory["meta"]["externalAccountRequired"] is True


def test_a_new_account_without_a_binding_is_refused(eab_harness: AcmeHarness) -> None:
    expect_problem(_new_account(Raw(eab_harness, "p256_noeab"), None), "externalAccountRequired", 400)


def test_a_valid_binding_creates_the_account_and_uses_up_the_kid(eab_harness: AcmeHarness) -> None:
    kid = _new_kid(eab_harness)
    first = Raw(eab_harness, "p256_eab1")
    status, body, headers = _new_account(first, _binding(first, kid))
    assert status == 201, body
    with eab_harness.ca.db.session() as session:
        record = eab.key_by_kid(session, kid)
        assert record is not None and record.status == "bound"
        assert headers["location"].endswith(f"/acct/{record.account_id}")
    # The same kid cannot bind a second account (RFC 8555 7.3.4: the CA may refuse reuse; Candor always does).
    second = Raw(eab_harness, "p256_eab2")
    expect_problem(_new_account(second, _binding(second, kid)), "unauthorized", 403)
    # The bound account finds itself again without a binding (RFC 8555 7.3.1).
    assert _new_account(first, None)[0] == 200


def test_a_wrong_mac_key_an_unknown_kid_and_a_revoked_kid_are_unauthorized(eab_harness: AcmeHarness) -> None:
    client = Raw(eab_harness, "p384_eab", "ES384")
    kid = _new_kid(eab_harness)
    expect_problem(_new_account(client, _binding(client, kid, mac=b"\x01" * 32)), "unauthorized", 403)
    expect_problem(_new_account(client, _binding(client, "kid-never-made")), "unauthorized", 403)
    with eab_harness.ca.db.session() as session:
        eab.revoke_key(session, kid)
    expect_problem(_new_account(client, _binding(client, kid)), "unauthorized", 403)
    with eab_harness.ca.db.session() as session:
        assert session.query(ExternalAccountKey).filter_by(kid=kid).one().account_id is None


def test_a_binding_offered_to_a_server_without_external_accounts_is_malformed(harness: AcmeHarness) -> None:
    client = Raw(harness, "p256_stray")
    expect_problem(_new_account(client, _binding(client, "kid-x")), "malformed", 400)


def test_the_mac_key_is_derived_not_stored() -> None:
    assert eab.mac_key(EAB_SECRET, "kid-a") != eab.mac_key(EAB_SECRET, "kid-b")
    assert eab.mac_key(EAB_SECRET, "kid-a") != eab.mac_key("t" * 40, "kid-a")
    assert len(eab.mac_key(EAB_SECRET, "kid-a")) == 32
    column_names = {column.name for column in ExternalAccountKey.__table__.columns}
    assert not {"mac", "hmac", "key", "secret"} & column_names


# -- renewal information (RFC 9773) --------------------------------------------------------------------------


def test_renewal_info_for_an_issued_certificate(harness: AcmeHarness) -> None:
    client = Raw(harness, "p256").register()
    certificate = x509.load_der_x509_certificate(issued_certificate(harness, client, "www.example.com"))
    cert_id = ari.cert_id(certificate)
    status, body, headers = client.request("GET", f"/acme/renewal-info/{cert_id}")
    assert status == 200, body
    assert int(headers["retry-after"]) > 0
    window = body["suggestedWindow"]
    start, end = window["start"], window["end"]
    assert certificate.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ") < start < end
    assert end < certificate.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    _, directory, _ = client.request("GET", "/acme/directory")
    assert directory["renewalInfo"].endswith("/acme/renewal-info")

    # Revoked: the window moves into the past, so that a client renews at once (RFC 9773 4.2).
    der = certificate.public_bytes(Encoding.DER)
    revoked = client.post("/acme/revoke-cert", {"certificate": base64.urlsafe_b64encode(der).rstrip(b"=").decode()})
    assert revoked[0] == 200, revoked
    _, body, _ = client.request("GET", f"/acme/renewal-info/{cert_id}")
    now = harness.ca.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    assert body["suggestedWindow"]["end"] < now


@pytest.mark.parametrize(
    ("cert_id", "status", "acme_type"),
    [
        ("not-a-cert-id", 400, "malformed"),
        ("aGVsbG8.AA.extra", 400, "malformed"),
        ("aGVsbG8.gA", 400, "malformed"),  # a negative INTEGER
        ("aGVsbG8.AAE", 400, "malformed"),  # a non-minimal INTEGER
        ("aGVsbG8=.AQ", 400, "malformed"),  # padding
        ("aGVsbG8.AQ", 404, "malformed"),  # well formed, never issued
    ],
)
def test_bad_and_unknown_certificate_identifiers(
    harness: AcmeHarness, cert_id: str, status: int, acme_type: str
) -> None:
    code, body, _headers = Raw(harness, "p256").request("GET", f"/acme/renewal-info/{cert_id}")
    assert code == status, body
    assert body["type"] == URN + acme_type


def test_cert_id_round_trips_serials_with_the_high_bit_set() -> None:
    assert ari.serial_octets(0x80) == b"\x00\x80"
    assert ari.serial_octets(0x7F) == b"\x7f"
    parsed = ari.parse_cert_id("AQID." + base64.urlsafe_b64encode(b"\x00\x80\x01").rstrip(b"=").decode())
    assert parsed == ari.CertId(b"\x01\x02\x03", 0x8001)


def test_an_order_replacing_a_certificate_once(harness: AcmeHarness) -> None:
    client = Raw(harness, "p256").register()
    certificate = x509.load_der_x509_certificate(issued_certificate(harness, client, "example.com"))
    cert_id = ari.cert_id(certificate)
    identifiers = [{"type": "dns", "value": "example.com"}]
    status, order, _ = client.post("/acme/new-order", {"identifiers": identifiers, "replaces": cert_id})
    assert status == 201, order
    assert order["replaces"] == cert_id
    again = client.post("/acme/new-order", {"identifiers": identifiers, "replaces": cert_id})
    expect_problem(again, "alreadyReplaced", 409)
    unrelated = [{"type": "dns", "value": "api.example.org"}]
    other = Raw(harness, "p256_other").register()
    expect_problem(other.post("/acme/new-order", {"identifiers": identifiers, "replaces": cert_id}), "malformed", 400)
    expect_problem(client.post("/acme/new-order", {"identifiers": unrelated, "replaces": cert_id}), "malformed", 400)
    expect_problem(client.post("/acme/new-order", {"identifiers": identifiers, "replaces": 7}), "malformed", 400)


# -- revocation by an account holding authorizations (RFC 8555 7.6) ------------------------------------------


def _validate(harness: AcmeHarness, client: Raw, name: str) -> None:
    status, order, _ = client.post("/acme/new-order", {"identifiers": [{"type": "dns", "value": name}]})
    assert status == 201
    _, authz, _ = client.post(urlsplit(order["authorizations"][0]).path, None)
    if authz["status"] == "valid":
        return
    challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
    harness.responder_routes[f"/.well-known/acme-challenge/{challenge['token']}"] = route_for(
        key_authorization(challenge["token"], public_jwk_of(client.key_name))
    )
    _, answered, _ = client.post(urlsplit(challenge["url"]).path, {})
    assert answered["status"] == "valid", answered


def test_an_account_with_authorizations_for_every_name_may_revoke(harness: AcmeHarness) -> None:
    owner = Raw(harness, "p384_owner", "ES384").register()
    der = issued_certificate(harness, owner, "api.example.org")
    payload = {"certificate": base64.urlsafe_b64encode(der).rstrip(b"=").decode(), "reason": 4}
    stranger = Raw(harness, "p256_stranger").register()
    expect_problem(stranger.post("/acme/revoke-cert", payload), "unauthorized", 403)
    holder = Raw(harness, "p256_holder").register()
    _validate(harness, holder, "api.example.org")
    status, body, _ = holder.post("/acme/revoke-cert", payload)
    assert status == 200, body


def test_an_expired_authorization_does_not_count(harness: AcmeHarness) -> None:
    owner = Raw(harness, "p384_owner2", "ES384").register()
    der = issued_certificate(harness, owner, "www.example.com")
    holder = Raw(harness, "p256_late").register()
    _validate(harness, holder, "www.example.com")
    harness.ca.clock.advance(timedelta(days=8))  # past the 7-day authorization lifetime
    try:
        payload = {"certificate": base64.urlsafe_b64encode(der).rstrip(b"=").decode()}
        expect_problem(holder.post("/acme/revoke-cert", payload), "unauthorized", 403)
    finally:
        harness.ca.clock.advance(timedelta(days=-8))


# -- polling -------------------------------------------------------------------------------------------------


def test_a_processing_order_tells_the_client_when_to_look_again(harness: AcmeHarness) -> None:
    """RFC 8555 7.4: while a finalization is in flight the order is "processing", with Retry-After."""
    from candor.storage.models_issuance import Order

    client = Raw(harness, "p256_poll").register()
    status, _order, headers = client.post("/acme/new-order", {"identifiers": [{"type": "dns", "value": "example.com"}]})
    assert status == 201 and "retry-after" not in headers
    order_id = int(headers["location"].rsplit("/", 1)[1])
    with harness.ca.db.session() as session:
        stored = session.get(Order, order_id)
        assert stored is not None
        stored.status = "processing"
    _, body, headers = client.post(urlsplit(headers["location"]).path, None)
    assert body["status"] == "processing" and headers["retry-after"] == "1"


# -- deactivation (RFC 8555 7.5.2, 7.3.6) ---------------------------------------------------------------------


def test_deactivating_an_authorization_invalidates_its_order(harness: AcmeHarness) -> None:
    client = Raw(harness, "p256_deact").register()
    _, order, headers = client.post("/acme/new-order", {"identifiers": [{"type": "dns", "value": "example.com"}]})
    authz_path = urlsplit(order["authorizations"][0]).path
    expect_problem(client.post(authz_path, {"status": "valid"}), "malformed", 400)
    expect_problem(client.post(authz_path, {"status": "deactivated", "extra": 1}), "malformed", 400)
    status, authz, _ = client.post(authz_path, {"status": "deactivated"})
    assert status == 200 and authz["status"] == "deactivated"
    _, order, _ = client.post(urlsplit(headers["location"]).path, None)
    assert order["status"] == "invalid"
    expect_problem(client.post(authz_path, {"status": "deactivated"}), "malformed", 400)


def test_a_deactivated_account_can_do_nothing_more(harness: AcmeHarness) -> None:
    client = Raw(harness, "p256_gone").register()
    assert client.kid is not None
    status, account, _ = client.post(urlsplit(client.kid).path, {"status": "deactivated"})
    assert status == 200 and account["status"] == "deactivated"
    refused = client.post("/acme/new-order", {"identifiers": [{"type": "dns", "value": "example.com"}]})
    expect_problem(refused, "unauthorized", 403)


# -- subproblems (RFC 8555 6.7.1) ---------------------------------------------------------------------------


def test_every_refused_identifier_is_a_subproblem(harness: AcmeHarness) -> None:
    client = Raw(harness, "p256_subproblems").register()
    identifiers = [
        {"type": "dns", "value": "example.com"},
        {"type": "dns", "value": "ex_ample.com"},
        {"type": "dns", "value": "*.co.uk"},
        {"type": "dns", "value": "-bad-.example.com"},
    ]
    code, body, _ = client.post("/acme/new-order", {"identifiers": identifiers})
    assert code == 400 and body["type"] == URN + "rejectedIdentifier", body
    refused = {sub["identifier"]["value"] for sub in body["subproblems"]}
    assert refused == {"ex_ample.com", "*.co.uk", "-bad-.example.com"}
    assert all(sub["type"].startswith(URN) and sub["detail"] for sub in body["subproblems"])
    one = client.post("/acme/new-order", {"identifiers": identifiers[:2]})
    expect_problem(one, "rejectedIdentifier", 400)
    assert "subproblems" not in one[1] and "ex_ample.com" in one[1]["detail"]


def test_a_challenge_links_to_its_authorization_and_to_the_directory(harness: AcmeHarness) -> None:
    """RFC 8555 7.1: the "index" link relation is on every resource but the directory; 7.5.1: "up"."""
    client = Raw(harness, "p256_links").register()
    _, order, _ = client.post("/acme/new-order", {"identifiers": [{"type": "dns", "value": "example.com"}]})
    _, authz, _ = client.post(urlsplit(order["authorizations"][0]).path, None)
    _, _, headers = client.post(urlsplit(authz["challenges"][0]["url"]).path, None)
    assert 'rel="up"' in headers["link"] and 'rel="index"' in headers["link"]
    assert f"{urlsplit(order['authorizations'][0]).path}>" in headers["link"]
