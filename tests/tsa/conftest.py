"""Fixtures for the TSA tests: data directories with the default hierarchy and one TSA unit (ECDSA P-256, or
RSA-3072), shared by the tests that only issue tokens; a TSA opened on one of them, served over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tsa_support import Harness, harness, served, tsa_home


@pytest.fixture(scope="session")
def p256_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tsa_home(tmp_path_factory.mktemp("tsa-p256"))


@pytest.fixture(scope="session")
def rsa_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tsa_home(tmp_path_factory.mktemp("tsa-rsa"), algorithm="rsa-3072")


@pytest.fixture
def tsa(p256_home: Path) -> Iterator[Harness]:
    with harness(p256_home) as opened:
        yield opened


@pytest.fixture
def url(tsa: Harness) -> Iterator[str]:
    with served(tsa) as address:
        yield address
