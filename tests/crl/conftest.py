"""Fixtures for the CRL tests: the signer tests' issuing CA (tests/issuance/issuing.py) and a CRL generator
over its data directory, both on the same fake clock."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS / "issuance") not in sys.path:
    sys.path.insert(0, str(TESTS / "issuance"))

import pytest  # noqa: E402
from crl_support import generator_for  # noqa: E402
from issuing import CA, build_home, open_ca  # noqa: E402

from candor.revocation.crl.generate import CrlGenerator  # noqa: E402


@pytest.fixture(scope="module")
def ca_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_home(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def ca(ca_home: Path) -> Iterator[CA]:
    opened = open_ca(ca_home)
    yield opened
    opened.stores.close()
    opened.db.dispose()


@pytest.fixture
def generator(ca: CA) -> CrlGenerator:
    return generator_for(ca)
