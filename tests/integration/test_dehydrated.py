"""Issue 4 acceptance 2: the dehydrated client (Debian's 0.7.0), unmodified, completes an http-01 order against
`candor serve`: it writes the key authorizations into a webroot that the user's web server (here a small
threaded http.server) publishes under /.well-known/acme-challenge/ on port 80."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from acme_clients import ChallengeWebServer, LoopbackPool, Served, check_issued, client, run_client, serving
from cryptography.hazmat.primitives.asymmetric import ec

from support import run_cli

pytestmark = pytest.mark.slow
NAMES = ("dehydrated.example.com", "www.dehydrated.example.com")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("dehydrated"), NAMES, LoopbackPool(first=170, last=174)) as served:
        yield served


def _config(served: Served, base: Path, webroot: Path) -> Path:
    """A dehydrated config file (a shell fragment) for Candor: its directory, trusted through curl's --cacert."""
    config = base / "config"
    base.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f'CA="{served.directory}"\n'
        'CHALLENGETYPE="http-01"\n'
        f'BASEDIR="{base}"\n'
        f'WELLKNOWN="{webroot}"\n'
        f'CURL_OPTS="--cacert {served.root_pem}"\n'
        "KEY_ALGO=secp384r1\n"
        "CONTACT_EMAIL=ops@example.com\n"
    )
    return config


def test_dehydrated_http01_order_for_two_names(served: Served, tmp_path: Path) -> None:
    base, webroot = tmp_path / "dehydrated", tmp_path / "webroot"
    config = _config(served, base, webroot)
    with ChallengeWebServer(served.answer_ip, webroot) as web:
        registered = run_client([client("dehydrated"), "--config", str(config), "--register", "--accept-terms"])
        assert registered.returncode == 0, registered.stdout + registered.stderr
        domains = [arg for name in NAMES for arg in ("--domain", name)]
        issued = run_client([client("dehydrated"), "--config", str(config), "--cron", *domains])
        assert issued.returncode == 0, issued.stdout + issued.stderr
    assert len(web.answered()) == len(NAMES), "validation did not fetch one http-01 token per name"
    live = base / "certs" / NAMES[0]
    certificate = check_issued(served, live / "cert.pem", live / "chain.pem", NAMES, tmp_path / "verify")
    key = certificate.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey), key
    assert key.curve.name == "secp384r1"
    audit = run_cli("--data-dir", served.home, "audit", "verify")
    assert audit.code == 0, audit.err
