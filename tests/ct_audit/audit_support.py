"""Helpers for the CT audit tests: a CA issuing through two Candor logs on loopback (the CT submission tests'
end-to-end arrangement), a log served with a key the test chooses (so a second instance can fork the first),
log lists, and certificates signed with a Candor issuer's key outside the signer."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from issuing import CA
from starlette.applications import Starlette
from submit_support import ServedLog, free_port, log_item, operator, spki

from candor.clock import Clock
from candor.ct.log.app import ct_log_routes
from candor.ct.log.service import CtLog, LogParameters
from candor.ct.log.signer import EcdsaSigner
from candor.ct.submit.client import CtSubmitter
from candor.storage import Database, add_key, repositories

SETTINGS = {"backoff_seconds": 0.05, "max_backoff_seconds": 0.2, "attempt_timeout_seconds": 3, "attempts": 3}
POISON = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.3")  # RFC 6962 3.1 precertificate poison


class LateSource:
    """The signer's SctSource, pointed at a submitter once the CA (and its clock and database) exists."""

    def __init__(self) -> None:
        self.target: CtSubmitter | None = None

    def obtain(self, precertificate: x509.Certificate, issuer: x509.Certificate) -> bytes:
        assert self.target is not None
        return self.target.obtain(precertificate, issuer)


@contextmanager
def serve_log(
    name: str,
    operator_name: str,
    *,
    roots: Sequence[x509.Certificate],
    clock: Clock,
    work: Path,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> Iterator[ServedLog]:
    """A Candor RFC 6962 log on a loopback port, with its own SQLite database and *key* (a new one if None).
    Two instances with one key are one log that forked. The sequencer runs only when the test integrates."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    directory = work / f"{name}-{free_port()}"
    directory.mkdir(parents=True)
    db = Database(f"sqlite:///{directory / 'log.db'}")
    db.upgrade()
    with db.session() as session:
        add_key(session, label=name, store="file", backend="file", algorithm="ecdsa-p256", handle=f"{name}.key",
                public_key_der=spki(key), purpose="ct-log", created_at=clock.now())  # fmt: skip
    parameters = LogParameters(
        name=name, key_label=name, origin=f"127.0.0.1/ct/{name}", mmd=timedelta(seconds=60),
        integrate_interval=timedelta(milliseconds=200), integrate_batch=4096, static_dir=None,
    )  # fmt: skip
    ct_log = CtLog(parameters, db=db, clock=clock, signer=EcdsaSigner(key), roots=list(roots))
    ct_log.start(background=False)
    port = free_port()
    app = Starlette(routes=ct_log_routes(ct_log, prefix=f"/ct/{name}"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield ServedLog(name, operator_name, key, ct_log, f"http://127.0.0.1:{port}/ct/{name}/")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        ct_log.close()
        db.dispose()


def write_log_list(path: Path, logs: Sequence[tuple[ServedLog, str]]) -> Path:
    """A v3 log list naming each (log, url), one operator per log; MMD 24 h (``log_item``'s for RFC 6962)."""
    document = {"operators": [operator(log.operator, [log_item(log.key, description=log.name, url=url)])
                              for log, url in logs]}  # fmt: skip
    path.write_text(json.dumps(document))
    return path


def issuer_certificates(ca: CA) -> list[x509.Certificate]:
    with ca.db.session() as session:
        return [x509.load_der_x509_certificate(i.certificate_der) for i in repositories.list_issuers(session)]


def rogue_certificate(ca: CA, name: str, *, precertificate: bool = False) -> tuple[x509.Certificate, x509.Certificate]:
    """A certificate (or precertificate) for *name*, signed with the issuing CA tls-e1's key straight from the
    key store: what key misuse looks like. Returns it and the issuer's certificate."""
    with ca.db.session() as session:
        record = repositories.issuer_by_name(session, "tls-e1")
        assert record is not None
        issuer = x509.load_der_x509_certificate(record.certificate_der)
        ca_key = ca.signer.issuers.by_id(session, record.id).key()
    subject_key = ec.generate_private_key(ec.SECP256R1())
    now = ca.clock.now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer.subject)
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    if precertificate:
        builder = builder.add_extension(x509.UnrecognizedExtension(POISON, b"\x05\x00"), critical=True)
    return builder.sign(ca_key, hashes.SHA256()), issuer  # type: ignore[arg-type]


@dataclass
class World:
    ca: CA
    logs: list[ServedLog]
    submitter: CtSubmitter
    log_list: Path
    work: Path

    def integrate(self) -> None:
        for log in self.logs:
            log.ct_log.integrate()
