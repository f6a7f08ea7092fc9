"""The HTTP front end: health, CA certificates at their AIA URLs, CRLs, and clean errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from starlette.testclient import TestClient

from candor.clock import FakeClock
from candor.config import database_url, load_config
from candor.server import ServerState, create_app
from candor.storage import Database
from support import ceremony_file, make_home, run_cli


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = make_home(tmp_path_factory.mktemp("serve"))
    assert run_cli("--data-dir", home, "ceremony", "--config", ceremony_file(home / "c.toml")).code == 0
    return home


@pytest.fixture
def client(home: Path) -> Iterator[TestClient]:
    db = Database(database_url(load_config(home).database, home))
    state = ServerState(db=db, clock=FakeClock(), public_dir=home / "public", base_url="http://127.0.0.1:8080")
    with TestClient(create_app(state), raise_server_exceptions=False) as test_client:
        yield test_client
    db.dispose()


def test_health_reports_the_database(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok" and response.json()["issuers"] == 4


def test_aia_url_serves_the_issuer_der_with_rfc_2585_type(client: TestClient, home: Path) -> None:
    for name in ("root-x1", "tls-e1", "tls-r1", "tsa-ca1"):
        response = client.get(f"/issuers/{name}.der")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/pkix-cert"
        assert response.content == (home / "public" / "issuers" / f"{name}.der").read_bytes()
        assert x509.load_der_x509_certificate(response.content)


def test_every_aia_url_in_a_certificate_resolves_here(client: TestClient, home: Path) -> None:
    certificate = x509.load_der_x509_certificate((home / "public" / "issuers" / "tls-e1.der").read_bytes())
    aia = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    crldp = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    for url in [aia[0].access_location.value, crldp[0].full_name[0].value]:  # type: ignore[index]
        path = url.removeprefix("http://127.0.0.1:8080")
        assert client.get(path).status_code == 200, url


def test_crl_is_served_with_its_type_and_caching_headers(client: TestClient) -> None:
    response = client.get("/crl/root-x1.crl")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pkix-crl"
    assert "max-age" in response.headers["cache-control"] and response.headers["last-modified"]
    assert x509.load_der_x509_crl(response.content).next_update_utc is not None
    again = client.get("/crl/root-x1.crl", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304


@pytest.mark.parametrize(
    "path", ["/issuers/nope.der", "/issuers/tls-e1.txt", "/issuers/..%2Fcandor.der", "/crl/tls-e1.crl", "/nothing"]
)
def test_unknown_paths_are_clean_404s(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {"status": 404, "detail": "not found"}


def test_wrong_method_is_405(client: TestClient) -> None:
    assert client.post("/issuers/tls-e1.der").status_code == 405


def test_health_is_503_when_the_database_is_gone(home: Path) -> None:
    db = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    state = ServerState(db=db, clock=FakeClock(), public_dir=home / "public", base_url="http://x")
    state.load_issuers = lambda: None  # type: ignore[method-assign]
    with TestClient(create_app(state)) as test_client:
        response = test_client.get("/health")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
