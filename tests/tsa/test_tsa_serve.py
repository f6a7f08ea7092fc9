"""The TSA of the embedded default: ``candor init`` ends with a unit, ``candor serve`` announces ``/tsa`` and serves it;
openssl verifies its tokens, pyHanko signs a PDF with a Candor timestamp (``HTTPTimeStamper``) and validates it
as valid and trusted under Candor's root; start and stop are in the audit log. With ``[server] workers = 2``,
concurrent requests all get tokens with distinct serials, every one recorded."""

from __future__ import annotations

import datetime
import io
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select
from tsa_support import post, read_reply, request, tst_info

from candor.config import database_url, load_config
from candor.storage import Database
from candor.storage.models import AuditEvent
from candor.storage.models_tsa import TsaToken
from support import openssl, run_cli

pytestmark = pytest.mark.slow
START_TIMEOUT = 60


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _init(home: Path) -> None:
    result = run_cli("--data-dir", home, "init", "--port", str(_free_port()), "--acme-port", str(_free_port()))
    assert result.code == 0, result.err
    assert "TSA unit tsa-ca1-unit-1: ecdsa-p256 key in store 'file'" in result.out


@contextmanager
def candor_serve(home: Path) -> Iterator[str]:
    """`candor serve` in its own process group; the TSA URL it announces."""
    log = (home.parent / "serve.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "candor", "--data-dir", str(home), "serve"],
        stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        url = None
        deadline = time.monotonic() + START_TIMEOUT
        while url is None and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
            found = re.search(
                r"TSA \(RFC 3161\): POST application/timestamp-query to (\S+)", Path(log.name).read_text()
            )
            if found and "Application startup complete" in Path(log.name).read_text():
                url = found.group(1)
        assert url is not None, Path(log.name).read_text()[-3000:]
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def _events(home: Path, action: str) -> list[AuditEvent]:
    config = load_config(home)
    db = Database(database_url(config.database, home))
    try:
        assert run_cli("--data-dir", home, "audit", "verify").code == 0  # chains what is pending, checks it all
        with db.session() as session:
            return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))
    finally:
        db.dispose()


def test_the_embedded_default_serves_a_tsa_that_openssl_and_pyhanko_trust(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _init(home)
    root = home / "public" / "issuers" / "root-x1.pem"
    with candor_serve(home) as url:
        assert url == load_config(home).server.public_base_url + "/tsa"
        data = tmp_path / "data.txt"
        data.write_bytes(b"time-stamped by the embedded default\n")
        query = tmp_path / "q.tsq"
        assert openssl("ts", "-query", "-data", data, "-sha256", "-cert", "-out", query).returncode == 0
        reply = tmp_path / "r.tsr"
        reply.write_bytes(post(url, query.read_bytes())[2])
        verified = openssl("ts", "-verify", "-in", reply, "-data", data, "-CAfile", root)
        assert verified.returncode == 0 and "Verification: OK" in verified.stdout, verified.stderr
        status = _sign_pdf_and_validate(url, root)
        assert status.timestamp_validity is not None
        assert status.timestamp_validity.intact and status.timestamp_validity.valid
        assert status.timestamp_validity.trusted, status.pretty_print_details()
    assert [e.subject for e in _events(home, "tsa.start")] == [url]
    assert [e.subject for e in _events(home, "tsa.stop")] == [url]


def _sign_pdf_and_validate(url: str, root_pem: Path) -> object:
    """A one-page PDF signed with a throwaway key and timestamped by *url*; pyHanko's validation status."""
    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.pdf_utils.writer import PdfFileWriter
    from pyhanko.sign import signers, timestamps
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "PDF author")])
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    signer_certificate = asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))
    signer = signers.SimpleSigner(
        signing_cert=signer_certificate,
        signing_key=asn1_keys.PrivateKeyInfo.load(
            key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        ),
        cert_registry=SimpleCertificateStore(),
    )
    writer = PdfFileWriter()
    box = generic.ArrayObject([generic.NumberObject(v) for v in (0, 0, 200, 200)])
    writer.insert_page(
        generic.DictionaryObject(
            {generic.NameObject("/Type"): generic.NameObject("/Page"), generic.NameObject("/MediaBox"): box}
        )
    )
    pdf = io.BytesIO()
    writer.write(pdf)
    pdf.seek(0)
    signed = signers.sign_pdf(
        IncrementalPdfFileWriter(pdf), signers.PdfSignatureMetadata(field_name="Signature"), signer=signer,
        timestamper=timestamps.HTTPTimeStamper(url),
    )  # fmt: skip
    candor_root = asn1_x509.Certificate.load(
        x509.load_pem_x509_certificate(root_pem.read_bytes()).public_bytes(serialization.Encoding.DER)
    )
    return validate_pdf_signature(
        PdfFileReader(signed).embedded_signatures[0],
        ValidationContext(trust_roots=[signer_certificate]),
        ts_validation_context=ValidationContext(trust_roots=[candor_root], allow_fetching=False),
    )


def test_two_workers_give_every_request_a_token_with_a_serial_of_its_own(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _init(home)
    config = (home / "candor.toml").read_text()
    config, replaced = re.subn(r"(?m)^workers = 1$", "workers = 2", config)
    assert replaced == 1
    # the embedded default's own CT logs need one process (tests/server/test_workers.py); the TSA stays
    config, replaced = re.subn(r"(?s)\[\[ct\.logs\]\].*?(?=\[ocsp\])", "", config)
    assert replaced == 1
    (home / "candor.toml").write_text(config)
    with candor_serve(home) as url, ThreadPoolExecutor(max_workers=16) as pool:
        replies = list(pool.map(lambda i: read_reply(post(url, request(data=b"%d" % i))[2]), range(400)))
    assert all(r.status == 0 and r.token is not None for r in replies)
    serials = {int(tst_info(r.token or b"")["serialNumber"]) for r in replies}
    assert len(serials) == 400
    prefixes = {s >> 48 for s in serials}  # one per serving process
    settings = load_config(home)
    db = Database(database_url(settings.database, home))
    try:
        with db.session() as session:
            recorded = {int(s, 16) for s in session.scalars(select(TsaToken.serial_hex))}
    finally:
        db.dispose()
    assert serials <= recorded
    assert len(prefixes) == 2  # both processes answered (SO_REUSEPORT spreads 400 connections over both)
