"""A public ACME server presents the operator's own listener certificate (its clients trust the Web PKI, not
Candor's root); a key that does not match the certificate stops `candor serve` at start-up."""

from __future__ import annotations

import datetime
import socket
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from acme_clients import LoopbackPool, serving
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from support import run_cli

PASSWORD = "listener key password, long"


def _self_signed(directory: Path, name: str) -> tuple[Path, Path, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    certfile, keyfile = directory / f"{name}.pem", directory / f"{name}.key"
    certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSWORD.encode()),
        )
    )
    return certfile, keyfile, certificate


def _settings(certfile: Path, keyfile: Path, secret: Path) -> str:
    return (
        f'listener_certificate = "{certfile}"\nlistener_key = "{keyfile}"\n'
        f'listener_key_password = {{ file = "{secret}" }}'
    )


def test_the_listener_presents_the_configured_certificate(tmp_path: Path) -> None:
    certfile, keyfile, certificate = _self_signed(tmp_path / "tls", "acme.example.net")
    secret = tmp_path / "tls" / "password"
    secret.write_text(PASSWORD + "\n")
    with serving(
        tmp_path, (), LoopbackPool(first=140, last=149), acme_settings=_settings(certfile, keyfile, secret)
    ) as served:
        parts = urlsplit(served.directory)
        context = ssl.create_default_context(cafile=str(certfile))
        context.check_hostname = False
        with (
            socket.create_connection((parts.hostname, parts.port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="acme.example.net") as tls,
        ):
            presented = tls.getpeercert(binary_form=True)
    assert presented == certificate.public_bytes(serialization.Encoding.DER)


def test_a_key_that_is_not_the_certificates_stops_serve(tmp_path: Path) -> None:
    certfile, _, _ = _self_signed(tmp_path / "tls", "acme.example.net")
    _, other_key, _ = _self_signed(tmp_path / "tls", "other.example.net")
    secret = tmp_path / "tls" / "password"
    secret.write_text(PASSWORD + "\n")
    home = tmp_path / "home"
    assert run_cli("--data-dir", home, "init", "--port", "18090", "--acme-port", "18453").code == 0
    config = (home / "candor.toml").read_text()
    config = config.replace("[acme]\n", f"[acme]\n{_settings(certfile, other_key, secret)}\n", 1)
    (home / "candor.toml").write_text(config)
    result = run_cli("--data-dir", home, "serve")
    assert result.code != 0
    assert "listener_key is not the key of acme.listener_certificate" in result.err
    assert PASSWORD not in result.err + result.out
