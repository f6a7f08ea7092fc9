"""Fixtures for the OCSP tests: an issuing CA (the default ceremony, with a delegated P-256 responder for
tls-e1 and an RSA-2048 one for tls-r1), its OCSP signer, and an in-memory index fed by the signer."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "issuance"))

from issuing import build_home, open_ca
from ocsp_support import Ocsp

from candor.revocation.ocsp.index import ResponseIndex
from candor.revocation.ocsp.presign import OcspSigner
from candor.revocation.ocsp.settings import OcspSettings


@pytest.fixture(scope="module")
def ocsp_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_home(tmp_path_factory.mktemp("ocsp-ca"))


@pytest.fixture
def ocsp(ocsp_home: Path) -> Iterator[Ocsp]:
    # The ceremony ran on the system clock; responses dated now, so that openssl's time checks apply.
    ca = open_ca(ocsp_home, now=datetime.now(UTC).replace(microsecond=0))
    index = ResponseIndex()
    settings = OcspSettings()
    signer = OcspSigner(ca.db, ca.stores, ca.clock, settings, actor="test", sinks=[index])
    yield Ocsp(ca=ca, signer=signer, index=index, settings=settings)
    ca.stores.close()
    ca.db.dispose()
