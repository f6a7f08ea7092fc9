"""Fixtures for the signer tests: an issuing CA home (module-scoped) and an open CA per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from issuing import CA, build_home, open_ca


@pytest.fixture(scope="module")
def ca_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_home(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def ca(ca_home: Path) -> Iterator[CA]:
    opened = open_ca(ca_home)
    yield opened
    opened.stores.close()
    opened.db.dispose()
