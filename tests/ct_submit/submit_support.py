"""Helpers for the CT submission tests: log keys, log-list documents, SCTs signed by hand, and Candor's own
RFC 6962 logs served over HTTP on loopback (uvicorn in a thread, each log on its own database)."""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from starlette.applications import Starlette

from candor.clock import Clock
from candor.ct.log import tls
from candor.ct.log.app import ct_log_routes
from candor.ct.log.service import CtLog, LogParameters
from candor.ct.log.signer import EcdsaSigner
from candor.ct.submit.sct import SIGNATURE_ECDSA, SIGNATURE_RSA, Sct
from candor.storage import Database, add_key

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def spki(key: SigningKey) -> bytes:
    return key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def log_item(
    key: SigningKey,
    *,
    description: str,
    url: str,
    state: str = "usable",
    interval: tuple[str, str] | None = None,
    tiled: bool = False,
    log_id: bytes | None = None,
) -> dict[str, object]:
    """One entry of a v3 log list's ``logs`` (or ``tiled_logs``)."""
    der = spki(key)
    item: dict[str, object] = {
        "description": description,
        "log_id": b64(log_id if log_id is not None else hashlib.sha256(der).digest()),
        "key": b64(der),
        "mmd": 60 if tiled else 86400,
        "state": {state: {"timestamp": "2026-01-01T00:00:00Z"}},
    }
    if tiled:
        item["submission_url"] = url
        item["monitoring_url"] = url
    else:
        item["url"] = url
    if interval is not None:
        item["temporal_interval"] = {"start_inclusive": interval[0], "end_exclusive": interval[1]}
    return item


def operator(name: str, logs: Sequence[dict[str, object]] = (), tiled: Sequence[dict[str, object]] = ()) -> dict:
    return {"name": name, "email": [f"ct@{name.lower().replace(' ', '-')}.example"], "logs": list(logs),
            "tiled_logs": list(tiled)}  # fmt: skip


def sign_sct(key: SigningKey, entry: tls.SignedEntry, timestamp: datetime, extensions: bytes = b"") -> Sct:
    """An SCT as a log with *key* would issue it (RFC 6962 3.2), made here independently of Candor's log."""
    ms = int(timestamp.timestamp() * 1000)
    signed = bytes([0, 0]) + ms.to_bytes(8, "big") + entry.entry_type.to_bytes(2, "big") + entry.encode()
    signed += len(extensions).to_bytes(2, "big") + extensions
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature, algorithm = key.sign(signed, ec.ECDSA(hashes.SHA256())), SIGNATURE_ECDSA
    else:
        signature, algorithm = key.sign(signed, padding.PKCS1v15(), hashes.SHA256()), SIGNATURE_RSA
    return Sct(0, hashlib.sha256(spki(key)).digest(), ms, extensions, 4, algorithm, signature)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class ServedLog:
    name: str
    operator: str
    key: ec.EllipticCurvePrivateKey
    ct_log: CtLog
    url: str  # the log list's "url": submissions at <url>ct/v1/

    def entries(self) -> list[bytes]:
        """Every leaf_input integrated so far (RFC 6962 4.6)."""
        self.ct_log.integrate()
        size = self.ct_log.head().tree_size
        found: list[bytes] = []
        while len(found) < size:
            found += [leaf for leaf, _extra in self.ct_log.entries(len(found), size - 1)]
        return found


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
    db = Database(f"sqlite:///{work / f'{name}-{free_port()}.db'}")
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
