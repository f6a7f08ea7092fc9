"""Issue 5 acceptance 1 (and 4) on the embedded default: `candor serve` runs two CT logs of different operators,
and every certificate it issues carries two embedded SCTs that `openssl s_client -ct -ctlogfile` reports as
valid; a corrupted SCT is reported invalid; with a log down, nothing is finalised."""

from __future__ import annotations

import datetime
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from acme_clients import LoopbackPool, Served, free_port, serving
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from support import cli_issue, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("ct-embedded"), (), LoopbackPool(first=130, last=139)) as running:
        yield running


def _ctlogfile(served: Served, path: Path) -> Path:
    """OpenSSL's CT log file (`openssl-ct`?) from the log list `candor serve` published for its own logs."""
    document = json.loads((served.home / "public" / "ct" / "log_list.json").read_text())
    logs = [log for operator in document["operators"] for log in operator["logs"]]
    names = [log["description"].replace(" ", "_") for log in logs]
    sections = "".join(
        f"\n[{name}]\ndescription = {log['description']}\nkey = {log['key']}\n"
        for name, log in zip(names, logs, strict=True)
    )
    path.write_text(f"enabled_logs = {','.join(names)}\n{sections}")
    return path


def _issue(served: Served, work: Path, name: str) -> tuple[x509.Certificate, Path, Path]:
    """`candor issue` for *name*: the embedded default's issuer, SCTs from its own two logs over HTTP."""
    chain, path, keyfile = cli_issue(served.home, work, name)
    return chain[0], path, keyfile


def _s_client(served: Served, chain: Path, keyfile: Path, work: Path) -> str:
    """What `openssl s_client -ct` says of the certificate `openssl s_server` presents with *chain*."""
    leaf = x509.load_pem_x509_certificates(chain.read_bytes())[0]
    scts = leaf.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value
    newest = max(sct.timestamp for sct in scts).replace(tzinfo=datetime.UTC).timestamp()
    time.sleep(max(0.0, newest + 1.0 - time.time()))  # OpenSSL compares SCT times in whole seconds
    certificates = x509.load_pem_x509_certificates(chain.read_bytes())
    (work / "leaf.pem").write_bytes(certificates[0].public_bytes(Encoding.PEM))
    (work / "issuers.pem").write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in certificates[1:]))
    port = free_port()
    server = subprocess.Popen(
        ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(work / "leaf.pem"),
         "-cert_chain", str(work / "issuers.pem"), "-key", str(keyfile), "-quiet"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            client = subprocess.run(
                ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-ct",
                 "-ctlogfile", str(_ctlogfile(served, work / "logs.cnf")),
                 "-CAfile", str(served.root_pem)],
                input="", capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
            if "SCT validation status" in client.stdout or time.monotonic() > deadline:
                return client.stdout + client.stderr
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_certificate_from_the_embedded_default_carries_two_valid_scts(served: Served, tmp_path: Path) -> None:
    leaf, chain, keyfile = _issue(served, tmp_path / "good", "ct.example.test")
    scts = leaf.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value
    assert len({sct.log_id for sct in scts}) == 2  # two logs, two operators (the log list says so)
    output = _s_client(served, chain, keyfile, tmp_path / "good")
    assert output.count("SCT validation status: valid") == 2, output
    assert "Verify return code: 0 (ok)" in output, output


def test_a_corrupted_sct_is_reported_invalid(served: Served, tmp_path: Path) -> None:
    """The same certificate with one bit of its first SCT's signature flipped, signed again by the issuing CA
    (through the data directory's own key store): the CA's signature verifies, the SCT does not."""
    from candor.cli.context import open_context
    from candor.issuance import IssuerResolver
    from candor.keys import KeyStores
    from candor.signing.der import assemble_certificate
    from candor.storage import repositories

    leaf, chain, keyfile = _issue(served, tmp_path / "bad", "ct-bad.example.test")
    scts = leaf.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value
    signature = next(iter(scts)).signature
    tbs = bytearray(leaf.tbs_certificate_bytes)
    where = bytes(tbs).index(signature)
    tbs[where + len(signature) - 3] ^= 0x01
    with open_context(served.home, {}) as context:
        stores = KeyStores(context.config.keys.stores, base_dir=context.data_dir, environ=context.environ)
        try:
            with context.db.session() as session:
                record = repositories.issuer_by_name(session, "tls-e1")
                assert record is not None
                resolver = IssuerResolver(stores, base_url=context.config.server.public_base_url)
                ca_key = resolver.by_id(session, record.id).key()
            assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
            signed = ca_key.sign(bytes(tbs), ec.ECDSA(hashes.SHA256()))
        finally:
            stores.close()
    corrupted = x509.load_der_x509_certificate(assemble_certificate(bytes(tbs), signed))
    rest = chain.read_bytes().split(b"-----END CERTIFICATE-----\n", 1)[1]
    bad_chain = tmp_path / "bad" / "corrupted.pem"
    bad_chain.write_bytes(corrupted.public_bytes(Encoding.PEM) + rest)
    output = _s_client(served, bad_chain, keyfile, tmp_path / "bad")
    assert output.count("SCT validation status: valid") == 1, output
    assert "SCT validation status: invalid" in output, output


def test_with_a_log_down_nothing_is_finalised(tmp_path: Path) -> None:
    """Acceptance 4 through `candor serve`: log-b answers nothing, so the policy (two operators) cannot be met:
    `candor issue` fails with a one-line CT error and no final certificate is stored; the precertificate is."""
    from sqlalchemy import select

    from candor.cli.context import open_context
    from candor.storage.models import CertificateRecord

    down = free_port()  # nothing listens here
    override = f'[[ct.submit.logs]]\nlog_id = "{{log_id}}"\nurl = "http://127.0.0.1:{down}/"\n'
    with serving(tmp_path / "down", (), LoopbackPool(first=120, last=129)) as running:
        document = json.loads((running.home / "public" / "ct" / "log_list.json").read_text())
        log_b = next(
            log for operator in document["operators"] for log in operator["logs"] if "log-b" in log["description"]
        )
        config = (running.home / "candor.toml").read_text()
        config = config.replace('log_list = "public/ct/log_list.json"\n', 'log_list = "public/ct/log_list.json"\n'
                                'deadline_seconds = 4\n\n' + override.format(log_id=log_b["log_id"]))  # fmt: skip
        (running.home / "candor.toml").write_text(config)
        work = tmp_path / "work"
        work.mkdir()
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("down.example.test")]), critical=False)
            .sign(key, hashes.SHA256())
        )
        (work / "req.pem").write_bytes(csr.public_bytes(Encoding.PEM))
        result = run_cli("--data-dir", running.home, "issue", "--csr", work / "req.pem", "--issuer", "tls-e1")
        assert result.code != 0
        assert "CT policy not met" in result.err and "log-b" in result.err, result.err
        assert len(result.err.strip().splitlines()) == 1
        with open_context(running.home, {}) as context, context.db.session() as session:
            kinds = [r.kind for r in session.scalars(select(CertificateRecord).order_by(CertificateRecord.id))]
            assert kinds[-1] == "precertificate"  # the last thing stored: this order's precertificate, alone
