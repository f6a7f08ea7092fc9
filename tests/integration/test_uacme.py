"""Issue 4 acceptance 2: the uacme client (Debian's 1.7.4), unmodified, completes an http-01 order against
`candor serve` with its packaged hook script, /usr/share/uacme/uacme.sh, which writes the key authorizations into
a webroot that the user's web server (here a small threaded http.server) publishes on port 80.

uacme has no option naming a CA file: it verifies the server with libcurl's built-in trust, which Debian's
libcurl3-gnutls takes from the directory /etc/ssl/certs. A user of a private CA installs its root there; the test
does the same without touching the machine, in a private mount namespace for the uacme process alone, where a
directory holding only Candor's root is bind-mounted over /etc/ssl/certs (this needs root, as the tests have)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from acme_clients import (
    ChallengeWebServer,
    LoopbackPool,
    Served,
    check_issued,
    client,
    run_client,
    serving,
    unavailable,
)
from cryptography.hazmat.primitives.asymmetric import rsa

from support import run_cli

pytestmark = pytest.mark.slow
NAMES = ("uacme.example.com", "www.uacme.example.com")
HOOK = Path("/usr/share/uacme/uacme.sh")
SYSTEM_TRUST = "/etc/ssl/certs"  # Debian libcurl3-gnutls's CURL_CA_PATH (`strings libcurl-gnutls.so.4`)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("uacme"), NAMES, LoopbackPool(first=175, last=179)) as served:
        yield served


def _trusting_only(root_pem: Path, trust: Path) -> list[str]:
    """A command prefix that runs a program in a private mount namespace whose /etc/ssl/certs holds only
    *root_pem* (copied into the directory *trust*)."""
    trust.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(root_pem, trust / "candor-root.pem")
    unshare = shutil.which("unshare")
    if unshare is None:
        unavailable("unshare (util-linux) is not installed; uacme can only be given a CA through /etc/ssl/certs")
    assert unshare is not None
    script = f'mount --bind "$0" {SYSTEM_TRUST} && exec "$@"'
    prefix = [unshare, "--mount", "--propagation", "private", "sh", "-c", script]
    probe = subprocess.run([*prefix, str(trust), "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        unavailable(f"cannot bind a private {SYSTEM_TRUST} for uacme (needs root): {probe.stderr.strip()}")
    return [*prefix, str(trust)]


def test_uacme_http01_order_for_two_names_with_packaged_hook(served: Served, tmp_path: Path) -> None:
    uacme = client("uacme")
    if not HOOK.is_file():
        unavailable(f"uacme's hook script {HOOK} is missing")
    trusting = _trusting_only(served.root_pem, tmp_path / "trust")
    confdir, webroot = tmp_path / "uacme", tmp_path / "webroot"
    environ = dict(os.environ, UACME_CHALLENGE_PATH=str(webroot))  # where uacme.sh writes
    common = [uacme, "--verbose", "--confdir", str(confdir), "--acme-url", served.directory]
    with ChallengeWebServer(served.answer_ip, webroot) as web:
        account = run_client([*trusting, *common, "--yes", "new", "ops@example.com"], env=environ)
        assert account.returncode == 0, account.stdout + account.stderr
        issue = [*common, "--hook", str(HOOK), "--type", "RSA", "--bits", "3072", "issue", *NAMES]
        issued = run_client([*trusting, *issue], env=environ)
        assert issued.returncode == 0, issued.stdout + issued.stderr
    assert len(web.answered()) == len(NAMES), "validation did not fetch one http-01 token per name"
    saved = confdir / NAMES[0] / "cert.pem"  # the leaf followed by its issuer
    certificate = check_issued(served, saved, saved, NAMES, tmp_path / "verify")
    key = certificate.public_key()
    assert isinstance(key, rsa.RSAPublicKey), key
    assert key.key_size == 3072
    audit = run_cli("--data-dir", served.home, "audit", "verify")
    assert audit.code == 0, audit.err
