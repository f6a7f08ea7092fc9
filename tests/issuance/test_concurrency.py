"""Acceptance 4: 200 concurrent issuance requests, on SQLite and on PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from issuing import build_home, csr_for, open_ca
from sqlalchemy import func, select

from candor.audit import verify_chain
from candor.errors import CandorError, ErrorKind
from candor.storage.models import CertificateRecord, SerialRecord
from candor.storage.models_issuance import Issuance

pytestmark = pytest.mark.slow
REQUESTS = 200


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def concurrent_home(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    database = "sqlite:///candor.db"
    if request.param == "postgresql":
        database = request.getfixturevalue("postgres_schema_url")
    return build_home(tmp_path / "home", database=database)


def test_200_concurrent_issuances_succeed_with_unique_serials(concurrent_home: Path) -> None:
    ca = open_ca(concurrent_home)
    try:
        account = ca.account("acct-load")
        ca.authorize(account, "load.example.com", method="3.2.2.4.7")
        work = []
        for index in range(REQUESTS):
            name = f"host{index}.load.example.com"
            work.append((ca.order(account, [name]), csr_for([name])))

        def finalize(item: tuple[int, bytes]) -> str:
            order_id, csr = item
            try:
                return f"{ca.signer.finalize(order_id, csr).certificate.serial_number:x}"
            except CandorError as exc:  # a clean failure: one line, a kind
                return f"failed:{exc.kind}:{exc.message}"

        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(finalize, work))
        failures = [r for r in results if r.startswith("failed:")]
        assert failures == []
        assert len(set(results)) == REQUESTS
        with ca.db.session() as session:
            assert (
                session.scalar(select(func.count()).select_from(SerialRecord)) == REQUESTS + 6
            )  # + CA/responder certs
            assert session.scalar(select(func.count()).select_from(CertificateRecord)) == 2 * REQUESTS + 6
            states = session.scalars(select(Issuance.state)).all()
            assert states.count("complete") == REQUESTS
            assert verify_chain(session).ok
    finally:
        ca.stores.close()
        ca.db.dispose()


def test_two_finalizations_of_one_order_give_one_certificate(concurrent_home: Path) -> None:
    ca = open_ca(concurrent_home)
    try:
        account = ca.account("acct-race")
        ca.authorize(account, "race.example.com")
        order_id = ca.order(account, ["race.example.com"])
        csr = csr_for(["race.example.com"])

        def finalize(_: int) -> str:
            try:
                return f"{ca.signer.finalize(order_id, csr).certificate.serial_number:x}"
            except CandorError as exc:
                return f"failed:{exc.kind}" if exc.kind is ErrorKind.CONFLICT else f"failed:{exc.kind}:{exc.message}"

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(finalize, range(8)))
        serials = {r for r in results if not r.startswith("failed:")}
        assert len(serials) <= 1
        assert all(r == "failed:conflict" for r in results if r.startswith("failed:")), results
        with ca.db.session() as session:
            assert session.scalar(select(func.count()).select_from(Issuance)) == 1
    finally:
        ca.stores.close()
        ca.db.dispose()
