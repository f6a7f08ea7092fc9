"""Fixtures for the CT log tests: a PKI, a log key, and a log on each database backend."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from ct_pki import NOW, Pki, make_pki

from candor.clock import Clock, FakeClock
from candor.ct.log.service import CtLog, LogParameters, SharedWriter
from candor.ct.log.signer import EcdsaSigner
from candor.storage import Database, add_key

_serials = itertools.count(1000)


@pytest.fixture(scope="session")
def pki() -> Pki:
    return make_pki()


@pytest.fixture(scope="session")
def log_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def serial() -> Callable[[], int]:
    return lambda: next(_serials)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


def parameters(static_dir: Path | None, **overrides: object) -> LogParameters:
    values: dict[str, object] = {
        "name": "log-a",
        "key_label": "log-a",
        "origin": "ct.example.test/ct/log-a",
        "mmd": timedelta(seconds=60),
        "integrate_interval": timedelta(milliseconds=500),
        "integrate_batch": 4096,
        "static_dir": static_dir,
    }
    values.update(overrides)
    return LogParameters(**values)  # type: ignore[arg-type]


def record_log_key(db: Database, key: ec.EllipticCurvePrivateKey, label: str = "log-a") -> None:
    with db.session() as session:
        add_key(
            session,
            label=label,
            store="file",
            backend="file",
            algorithm="ecdsa-p256",
            handle=f"{label}.key",
            public_key_der=key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo),
            purpose="ct-log",
            created_at=NOW,
        )


@pytest.fixture
def make_log(
    db: Database, pki: Pki, log_key: ec.EllipticCurvePrivateKey, clock: FakeClock, tmp_path: Path
) -> Iterator[Callable[..., CtLog]]:
    """Builds started logs on the ``db`` fixture's database (integrated by hand unless background=True; with
    sequence=False, one that follows another's tree heads)."""
    record_log_key(db, log_key)
    opened: list[CtLog] = []

    def build(
        *, background: bool = False, sequence: bool = True, log_clock: Clock | None = None, **overrides: object
    ) -> CtLog:
        ct_log = CtLog(
            parameters(tmp_path / "static", **overrides),
            db=db,
            clock=log_clock or clock,
            signer=EcdsaSigner(log_key),
            roots=[pki.root.certificate],
        )
        ct_log.start(background=background, sequence=sequence)
        opened.append(ct_log)
        return ct_log

    yield build
    for ct_log in opened:
        ct_log.close()


@pytest.fixture
def ct_log(make_log: Callable[..., CtLog]) -> CtLog:
    return make_log()


@pytest.fixture
def shared_logs(db: Database, pki: Pki, clock: FakeClock) -> Iterator[list[tuple[CtLog, ec.EllipticCurvePrivateKey]]]:
    """Two started logs (log-a, log-b: own keys) on the ``db`` fixture's database, storing their submissions
    through one SharedWriter as `candor serve`'s own logs do; integrated by hand."""
    writer = SharedWriter(db)
    opened: list[tuple[CtLog, ec.EllipticCurvePrivateKey]] = []
    for name in ("log-a", "log-b"):
        key = ec.generate_private_key(ec.SECP256R1())
        record_log_key(db, key, name)
        ct_log = CtLog(
            parameters(None, name=name, key_label=name, origin=f"ct.example.test/ct/{name}"),
            db=db, clock=clock, signer=EcdsaSigner(key), roots=[pki.root.certificate], writer=writer,
        )  # fmt: skip
        ct_log.start(background=False)
        opened.append((ct_log, key))
    yield opened
    for ct_log, _ in opened:
        ct_log.close()
