"""Fixtures for the CRL tests: the signer tests' issuing CA (tests/issuance/issuing.py) and a CRL generator
over its data directory, both on the same fake clock."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS / "issuance") not in sys.path:
    sys.path.insert(0, str(TESTS / "issuance"))

import pytest  # noqa: E402
from crl_support import generator_for  # noqa: E402
from issuing import CA, build_home, open_ca  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from candor.revocation.crl.generate import CrlGenerator  # noqa: E402
from candor.storage.models import SerialRecord  # noqa: E402
from candor.storage.models_crl import CrlShard  # noqa: E402


@pytest.fixture(scope="module")
def ca_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_home(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def ca(ca_home: Path) -> Iterator[CA]:
    """The module's CA, its clock a minute past anything earlier tests revoked or published (their revocation
    dates would otherwise be after the next CRL's thisUpdate, which the checks refuse)."""
    opened = open_ca(ca_home)
    with opened.db.session() as session:
        latest = [
            session.scalar(select(func.max(SerialRecord.revoked_at))),
            session.scalar(select(func.max(CrlShard.this_update))),
        ]
    moments = [m.replace(tzinfo=UTC) if m.tzinfo is None else m for m in latest if m is not None]
    if moments and max(moments) >= opened.clock.now():
        opened.clock.set(max(moments) + timedelta(minutes=1))
    yield opened
    opened.stores.close()
    opened.db.dispose()


@pytest.fixture
def generator(ca: CA) -> CrlGenerator:
    return generator_for(ca)
