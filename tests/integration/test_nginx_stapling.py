"""Issue 6 acceptance 2: nginx (Debian) serving a certificate from the embedded default, with `ssl_stapling on;
ssl_stapling_verify on`, fetches its status from Candor's OCSP responder (the URL in the certificate's AIA) and
staples it: `openssl s_client -status` sees a good response. After a revocation (and an nginx reload, which
drops nginx's cached staple) nginx fetches the revoked response; nginx staples only "good" responses
(ngx_event_openssl_stapling.c logs any other status and sends none), so the client sees the good staple
disappear and nginx's log names the revoked status Candor answered. nginx does staple a revoked response an
operator fetches from Candor's responder and hands it as `ssl_stapling_file` (which nginx staples as it is):
`openssl s_client -status` then sees Candor's revoked response, reason and time included."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from acme_clients import LoopbackPool, Served, free_port, serving
from bind9 import unavailable
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from support import run_cli

pytestmark = pytest.mark.slow
NAME = "stapled.example.test"


def _nginx() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        unavailable("nginx is not installed (Debian: apt-get install nginx)")
    assert found is not None
    return found


def _issue(served: Served, work: Path) -> tuple[x509.Certificate, Path, Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (work / "req.pem").write_bytes(csr.public_bytes(Encoding.PEM))
    keyfile = work / "server.key"
    keyfile.write_bytes(
        key.private_bytes(Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    fullchain = work / "fullchain.pem"
    result = run_cli(
        "--data-dir", served.home, "issue", "--csr", work / "req.pem", "--issuer", "tls-e1", "--out", fullchain
    )
    assert result.code == 0, result.err
    certificates = x509.load_pem_x509_certificates(fullchain.read_bytes())
    trusted = work / "trusted.pem"  # what nginx checks the OCSP response against: the issuer and the root
    trusted.write_bytes(certificates[1].public_bytes(Encoding.PEM) + served.root_pem.read_bytes())
    return certificates[0], fullchain, keyfile, trusted


def _config(
    work: Path, port: int, fullchain: Path, keyfile: Path, trusted: Path, stapling_file: Path | None = None
) -> Path:
    conf = work / "nginx.conf"
    from_file = f"ssl_stapling_file {stapling_file};" if stapling_file is not None else ""
    conf.write_text(f"""\
daemon off;
master_process on;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {work}/tmp-body;
    proxy_temp_path {work}/tmp-proxy;
    fastcgi_temp_path {work}/tmp-fastcgi;
    uwsgi_temp_path {work}/tmp-uwsgi;
    scgi_temp_path {work}/tmp-scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name {NAME};
        ssl_certificate {fullchain};
        ssl_certificate_key {keyfile};
        ssl_stapling on;
        ssl_stapling_verify on;
        ssl_trusted_certificate {trusted};
        {from_file}
        return 200 "ok";
    }}
}}
""")
    return conf


def _stapled(port: int, root: Path) -> str:
    """What `openssl s_client -status` says of the staple nginx sends (nginx fetches it on a first handshake,
    so this asks until a response is stapled)."""
    client = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", NAME, "-status",
         "-CAfile", str(root)],
        input="", capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return client.stdout + client.stderr


def _until(port: int, root: Path, wanted: str, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while True:
        output = _stapled(port, root)
        if wanted in output:
            return output
        assert time.monotonic() < deadline, f"nginx stapled no response with {wanted!r}:\n{output}"
        time.sleep(0.5)


def _responder_says(served: Served, leaf: Path, issuer: Path, url: str, wanted: str, seconds: float) -> None:
    """Wait until Candor's responder answers *wanted* (nginx caches a failed fetch for minutes, so it is
    started, and reloaded, only once the responder has signed)."""
    deadline = time.monotonic() + seconds
    while True:
        answer = subprocess.run(
            ["openssl", "ocsp", "-issuer", str(issuer), "-cert", str(leaf), "-url", url, "-no_nonce",
             "-CAfile", str(served.root_pem)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        if f"{leaf}: {wanted}" in answer.stdout:
            return
        assert time.monotonic() < deadline, answer.stdout + answer.stderr
        time.sleep(0.25)


def test_nginx_staples_candors_good_then_revoked_response(tmp_path: Path) -> None:
    nginx = _nginx()
    with serving(tmp_path, (), LoopbackPool(first=90, last=99)) as served:
        work = tmp_path / "nginx"
        work.mkdir()
        leaf, fullchain, keyfile, trusted = _issue(served, work)
        (work / "leaf.pem").write_bytes(leaf.public_bytes(Encoding.PEM))
        (work / "issuer.pem").write_bytes(
            x509.load_pem_x509_certificates(fullchain.read_bytes())[1].public_bytes(Encoding.PEM)
        )
        aia = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        url = next(
            d.access_location.value for d in aia if d.access_method == x509.oid.AuthorityInformationAccessOID.OCSP
        )
        _responder_says(served, work / "leaf.pem", work / "issuer.pem", url, "good", 30)
        port = free_port()
        conf = _config(work, port, fullchain, keyfile, trusted)
        process = subprocess.Popen([nginx, "-c", str(conf), "-p", str(work)], stderr=subprocess.DEVNULL)
        try:
            good = _until(port, served.root_pem, "Cert Status: good", 60)
            assert "OCSP Response Status: successful" in good and "Verify return code: 0 (ok)" in good

            revoked = run_cli(
                "--data-dir", served.home, "revoke", "--issuer", "tls-e1", "--serial", f"{leaf.serial_number:x}",
                "--reason", "keyCompromise",
            )  # fmt: skip
            assert revoked.code == 0, revoked.err
            _responder_says(served, work / "leaf.pem", work / "issuer.pem", url, "revoked", 30)
            os.kill(process.pid, signal.SIGHUP)  # reload: new SSL contexts, no cached staple
            # nginx fetches the revoked answer and, by design, staples only "good" ones (its stapling code logs
            # any other status as an error and sends no staple): the revoked status is what it fetched.
            deadline = time.monotonic() + 60
            log = work / "error.log"
            while 'certificate status "revoked" in the OCSP response' not in log.read_text():
                _stapled(port, served.root_pem)  # a handshake makes nginx fetch
                assert time.monotonic() < deadline, log.read_text()[-2000:]
                time.sleep(0.5)
            after = _stapled(port, served.root_pem)
            assert "Cert Status: good" not in after and "OCSP response: no response sent" in after

            # the operator's route for a revoked staple: Candor's revoked response, fetched from its responder
            # over HTTP, as nginx's ssl_stapling_file
            fetched = work / "revoked.der"
            subprocess.run(
                ["openssl", "ocsp", "-issuer", str(work / "issuer.pem"), "-cert", str(work / "leaf.pem"),
                 "-url", url, "-no_nonce", "-CAfile", str(served.root_pem), "-respout", str(fetched)],
                capture_output=True, text=True, timeout=30, check=True,
            )  # fmt: skip
            _config(work, port, fullchain, keyfile, trusted, stapling_file=fetched)
            os.kill(process.pid, signal.SIGHUP)
            stapled = _until(port, served.root_pem, "Cert Status: revoked", 30)
            assert "Reason: keyCompromise" in stapled and "OCSP Response Status: successful" in stapled
        finally:
            process.terminate()
            process.wait(timeout=20)
