"""The CT audit tests reuse the CT log tests' helpers (tests/ct), the signer tests' CA (tests/issuance), the
CT submission tests' logs on loopback (tests/ct_submit) and the skip-or-fail rule (tests/validation/bind9.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
for _directory in (TESTS / "ct", TESTS / "issuance", TESTS / "ct_submit", TESTS / "validation"):
    if str(_directory) not in sys.path:
        sys.path.insert(0, str(_directory))

# The shared fixtures need the directories above on the path first.
import pytest  # noqa: E402
from audit_support import SETTINGS, LateSource, World, issuer_certificates, write_log_list  # noqa: E402
from cryptography import x509  # noqa: E402
from issuing import build_home, open_ca  # noqa: E402
from submit_support import serve_log  # noqa: E402

from candor.clock import SystemClock  # noqa: E402
from candor.ct.submit.client import CtSubmitter  # noqa: E402
from candor.ct.submit.settings import CtSubmitSettings  # noqa: E402


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_home(tmp_path_factory.mktemp("ct-audit-ca"), private=False)


@pytest.fixture
def world(home: Path, tmp_path: Path) -> Iterator[World]:
    source = LateSource()
    # The CLI runs on the system clock: the CA's fake clock starts there, so the SCTs are not from the future.
    ca = open_ca(home, now=SystemClock().now(), sct_source=source)
    root = x509.load_pem_x509_certificate(ca.root_pem.read_bytes())
    with (
        serve_log("log-a", "Operator A", roots=[root], clock=ca.clock, work=tmp_path) as log_a,
        serve_log("log-b", "Operator B", roots=[root], clock=ca.clock, work=tmp_path) as log_b,
    ):
        log_list = write_log_list(tmp_path / "log_list.json", [(log_a, log_a.url), (log_b, log_b.url)])
        settings = CtSubmitSettings(log_list=log_list, **SETTINGS)  # type: ignore[arg-type]
        submitter = CtSubmitter.from_settings(
            settings, data_dir=tmp_path, clock=ca.clock, ca_certificates=issuer_certificates(ca), db=ca.db
        )
        assert submitter is not None
        source.target = submitter
        try:
            yield World(ca, [log_a, log_b], submitter, log_list, tmp_path)
        finally:
            submitter.close()
            ca.stores.close()
            ca.db.dispose()
