"""An independent verifier: OpenSSL's CT code (``s_client -ct``) validates an SCT from Candor's log embedded in
a final certificate (RFC 6962 3.3), rebuilding the precertificate input with issuer_key_hash itself, and
reports a corrupted one as invalid."""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID
from ct_pki import LEAF_KEY, Pki, leaf_builder, precertificate

from candor.clock import FakeClock, SystemClock
from candor.ct.log.service import CtLog
from candor.ct.log.tls import sct_list
from candor.profiles.der import encode_octet_string

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _openssl_ct_status(work: Path, final: bytes, pki: Pki, ct_log: CtLog) -> str:
    (work / "leaf.pem").write_bytes(x509.load_der_x509_certificate(final).public_bytes(Encoding.PEM))
    (work / "leaf.key").write_bytes(
        LEAF_KEY.private_bytes(Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (work / "issuer.pem").write_bytes(pki.issuer.certificate.public_bytes(Encoding.PEM))
    (work / "root.pem").write_bytes(pki.root.certificate.public_bytes(Encoding.PEM))
    key = base64.b64encode(ct_log.public_key_der).decode()
    (work / "logs.cnf").write_text(f"enabled_logs = candor\n\n[candor]\ndescription = Candor test log\nkey = {key}\n")
    port = _free_port()
    server = subprocess.Popen(
        ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", "leaf.pem", "-key", "leaf.key",
         "-cert_chain", "issuer.pem", "-quiet"],
        cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:  # until the server listens
            client = subprocess.run(
                ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-ct", "-ctlogfile", "logs.cnf",
                 "-CAfile", "root.pem"],
                cwd=work, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            if "Connection refused" not in client.stderr or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=10)
    return client.stdout + client.stderr


@pytest.mark.parametrize("corrupt", [False, True])
def test_openssl_validates_the_embedded_sct(
    make_log: Callable[..., CtLog], pki: Pki, tmp_path: Path, corrupt: bool
) -> None:
    # OpenSSL compares SCT timestamps with the current time in whole seconds: stand two seconds back.
    now = SystemClock().now() - timedelta(seconds=2)
    ct_log = make_log(log_clock=FakeClock(now))
    precert = precertificate(pki.issuer, 77, now=now)
    sct = ct_log.add_chain([precert, pki.issuer.der], precertificate=True)
    serialized = bytearray(sct.serialize())
    if corrupt:
        serialized[-5] ^= 0x01  # one bit of the signature
    extension = x509.UnrecognizedExtension(
        ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS, encode_octet_string(sct_list([bytes(serialized)]))
    )
    final = leaf_builder(pki.issuer.name, 77, now=now).add_extension(extension, critical=False)
    final_der = final.sign(pki.issuer.key, hashes.SHA256()).public_bytes(Encoding.DER)
    parsed = x509.load_der_x509_certificate(final_der)
    [embedded] = parsed.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value
    assert embedded.log_id == ct_log.log_id and embedded.extension_bytes == sct.extensions
    output = _openssl_ct_status(tmp_path, final_der, pki, ct_log)
    expected = "SCT validation status: invalid" if corrupt else "SCT validation status: valid"
    assert expected in output, output
