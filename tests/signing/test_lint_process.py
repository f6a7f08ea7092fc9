"""pkilint in a helper process (what `candor serve` uses): the same report and the same refusal as in process,
and a helper that dies or is inherited by a fork never lets anything through unlinted."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "profiles"))

from subscriber_pki import issuing_ca, request, template

from candor import signing
from candor.errors import CandorError, ErrorKind
from candor.lint import CertificateKind, require_clean
from candor.lint.certificates import lint_certificate
from candor.policy.algorithms import KeyAlgorithm
from candor.profiles import precertificate, to_builder
from candor.signing import lint_process
from candor.signing.lint_process import LintPool, LintProcess


@pytest.fixture
def helper() -> Iterator[LintProcess]:
    process = LintProcess()
    yield process
    process.close()


def _draft(final: bool = False) -> bytes:
    shape = template(request("dv", common_name=None))
    built = to_builder(shape if final else precertificate(shape))
    return built.sign(issuing_ca("dv").key, KeyAlgorithm.ECDSA_P256.signature_hash()).public_bytes(Encoding.DER)


def test_the_helper_gives_the_report_the_linter_gives_in_process(helper: LintProcess) -> None:
    der = _draft()
    kind = CertificateKind.DV_PRECERTIFICATE
    assert helper.require_clean(der, kind, what="x") == require_clean(der, kind, what="x")


def test_the_helper_refuses_what_the_linter_refuses_in_process(helper: LintProcess) -> None:
    der = _draft(final=True)  # a final certificate linted as a precertificate: no poison
    with pytest.raises(CandorError) as in_process:
        require_clean(der, CertificateKind.DV_PRECERTIFICATE, what="draft")
    with pytest.raises(CandorError) as in_helper:
        helper.require_clean(der, CertificateKind.DV_PRECERTIFICATE, what="draft")
    assert in_helper.value.kind is in_process.value.kind is ErrorKind.LINT
    assert in_helper.value.message == in_process.value.message


def test_a_helper_that_dies_on_a_request_fails_closed_and_is_replaced(
    helper: LintProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    der = _draft()
    monkeypatch.setattr(lint_process, "HELPER", "import sys; sys.stdin.readline(); sys.exit(3)")
    with pytest.raises(CandorError) as caught:
        helper.require_clean(der, CertificateKind.DV_PRECERTIFICATE, what="x")
    # the linter could not run: nothing is signed, and the order is left ready (UNAVAILABLE, not a LINT verdict)
    assert caught.value.kind is ErrorKind.UNAVAILABLE and "exited with code 3" in caught.value.message
    monkeypatch.undo()
    assert helper.require_clean(der, CertificateKind.DV_PRECERTIFICATE, what="x").ok  # a new, real helper


@pytest.mark.parametrize(
    "answer",
    ['{}', '{"kind": "dv-precertificate"}', '{"kind": "no such kind", "findings": []}', '[1, 2]',
     '{"kind": "dv-precertificate", "findings": [{"bogus": 1}]}'],
)  # fmt: skip
def test_a_helper_answering_outside_its_protocol_fails_closed_and_is_replaced(
    helper: LintProcess, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    der = _draft()
    monkeypatch.setattr(lint_process, "HELPER", f"import sys\nfor _ in sys.stdin: print({answer!r}, flush=True)")
    with pytest.raises(CandorError) as caught:
        helper.require_clean(der, CertificateKind.DV_PRECERTIFICATE, what="x")
    assert caught.value.kind is ErrorKind.UNAVAILABLE
    monkeypatch.undo()
    assert helper.require_clean(der, CertificateKind.DV_PRECERTIFICATE, what="x").ok  # a new, real helper


def test_a_helper_that_says_clean_but_lists_errors_is_not_believed(
    helper: LintProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    der = _draft(final=True)  # pkilint's errors for this draft, as the helper would list them
    report = lint_certificate(der, CertificateKind.DV_PRECERTIFICATE)
    assert report.errors
    answer = json.dumps({"kind": report.kind.value, "findings": [dataclasses.asdict(f) for f in report.findings]})
    monkeypatch.setattr(lint_process, "HELPER", f"import sys\nfor _ in sys.stdin: print({answer!r}, flush=True)")
    with pytest.raises(CandorError) as caught:
        helper.require_clean(der, CertificateKind.DV_PRECERTIFICATE, what="x")
    assert caught.value.kind is ErrorKind.LINT


def test_a_helper_that_ended_between_lints_is_replaced(helper: LintProcess) -> None:
    der = _draft()
    helper.require_clean(der, CertificateKind.DV_PRECERTIFICATE, what="x")
    assert helper._process is not None
    helper._process.kill()
    helper._process.wait()
    assert helper.require_clean(der, CertificateKind.DV_PRECERTIFICATE, what="x").ok


def test_a_forked_process_lints_through_a_helper_of_its_own(helper: LintProcess) -> None:
    der = _draft()
    helper.require_clean(der, CertificateKind.DV_PRECERTIFICATE, what="x")
    parents = helper._process
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            ok = helper.require_clean(der, CertificateKind.DV_PRECERTIFICATE, what="x").ok
            code = 0 if ok and helper._process is not parents else 2
        finally:
            os._exit(code)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert helper._process is parents and parents is not None and parents.poll() is None  # the parent's is intact


def test_the_signer_side_switch_lints_through_the_helper_and_back() -> None:
    signing.lint_in_helper_process()
    try:
        token = signing.prepare(
            precertificate(template(request("dv", common_name=None))), algorithm=KeyAlgorithm.ECDSA_P256,
            kind=CertificateKind.DV_PRECERTIFICATE, what="test precertificate",
        )  # fmt: skip
        assert token.report is not None and token.report.ok
        with pytest.raises(CandorError) as caught:
            signing.prepare(
                template(request("dv", common_name=None)), algorithm=KeyAlgorithm.ECDSA_P256,
                kind=CertificateKind.DV_PRECERTIFICATE, what="x",
            )  # fmt: skip
        assert caught.value.kind is ErrorKind.LINT
    finally:
        signing.lint_in_helper_process(False)


def test_a_pool_lints_two_at_once_in_two_helpers() -> None:
    der = _draft()
    pool = LintPool(2)
    together = threading.Barrier(2, timeout=20)  # broken (and the lints fail) unless both hold a helper at once
    used: list[int] = []
    original = LintProcess.require_clean

    def held(self: LintProcess, *args: Any, **kwargs: Any) -> Any:
        report = original(self, *args, **kwargs)
        assert self._process is not None
        used.append(self._process.pid)
        together.wait()
        return report

    try:
        with pytest.MonkeyPatch.context() as patch, ThreadPoolExecutor(2) as threads:
            patch.setattr(LintProcess, "require_clean", held)
            futures = [
                threads.submit(pool.require_clean, der, CertificateKind.DV_PRECERTIFICATE, what="x") for _ in range(2)
            ]
            assert all(f.result(timeout=60).ok for f in futures)
        assert len(set(used)) == 2  # two helper processes
    finally:
        pool.close()


def test_a_pool_in_a_forked_process_lints_through_helpers_of_its_own() -> None:
    der = _draft()
    pool = LintPool(2)
    try:
        assert pool.require_clean(der, CertificateKind.DV_PRECERTIFICATE, what="x").ok
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                reports = [pool.require_clean(der, CertificateKind.DV_PRECERTIFICATE, what="x") for _ in range(3)]
                code = 0 if all(r.ok for r in reports) else 2
            finally:
                os._exit(code)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        assert pool.require_clean(der, CertificateKind.DV_PRECERTIFICATE, what="x").ok  # the parent's still answer
    finally:
        pool.close()


def test_a_pool_needs_a_helper() -> None:
    with pytest.raises(ValueError, match="at least one helper"):
        LintPool(0)


def test_warming_starts_every_helper_of_a_pool_with_its_validators_built() -> None:
    pool = LintPool(2)
    try:
        for thread in pool.warm([CertificateKind.DV_PRECERTIFICATE]):
            thread.join(60)
        helpers = pool._helpers
        assert all(h._process is not None and h._process.poll() is None for h in helpers)  # started, running
        pids = {h._process.pid for h in helpers if h._process is not None}
        assert len(pids) == 2
        report = pool.require_clean(_draft(), CertificateKind.DV_PRECERTIFICATE, what="x")
        assert report.ok and {h._process.pid for h in helpers if h._process is not None} == pids  # the same ones
    finally:
        pool.close()


def test_a_warm_up_the_helper_cannot_do_is_reported_and_lints_still_run(helper: LintProcess) -> None:
    assert helper.warm([CertificateKind.DV_PRECERTIFICATE])
    bogus = dataclasses.make_dataclass("Bogus", [("value", str)])("no-such-kind")
    assert not helper.warm([bogus])  # type: ignore[list-item]
    assert helper.require_clean(_draft(), CertificateKind.DV_PRECERTIFICATE, what="x").ok


def test_the_helper_runs_at_a_lower_priority_than_the_process_that_started_it(helper: LintProcess) -> None:
    """The worker's threads (and the holder of the database's write lock) go before a lint on their core."""
    helper.require_clean(_draft(), CertificateKind.DV_PRECERTIFICATE, what="x")
    assert helper._process is not None
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, helper._process.pid) == min(19, mine + lint_process.HELPER_NICENESS)
