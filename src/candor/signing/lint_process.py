"""pkilint in a helper process, for a server that signs while it serves.

pkilint is pure Python: one lint of a precertificate is several milliseconds of CPU under the serving process's
one GIL, during which its other requests (and, on SQLite, the writer holding the database's write lock) wait
for the interpreter. :class:`LintProcess` runs the same :func:`candor.lint.require_clean` in a helper process
(``python -c HELPER``, started on first use) on the draft's DER,
and gives back its report or its refusal: the validators, the filters and the verdict are exactly those of the
in-process call, and the TBS that gets signed is still the one the caller holds. The helper never sees a key:
the draft it lints is signed with a throwaway key. One JSON line each way, over its stdin and stdout.

:class:`LintPool` keeps several of them per serving process, so that two finalizations at once need not be
linted one after the other (a DV precertificate's lint is ~3 ms of CPU on the sixth session's machine, ~10 ms
on an earlier one). ``candor serve`` gives each worker one helper per
core it has a share of: more helpers than cores only compete for them (bench/acme.py, two workers on two
cores: two helpers each gave 31 orders/s, one each 35-36).

Fail closed: a helper that exits, answers nonsense or takes longer than :data:`LINT_TIMEOUT_SECONDS` is a
``LINT`` error (nothing is signed) and is replaced at the next lint.
"""

from __future__ import annotations

import base64
import gc
import json
import logging
import os
import queue
import select
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import IO, Any

from candor.errors import CandorError, ErrorKind
from candor.lint import CertificateKind, Finding, LintReport, require_clean
from candor.lint.certificates import is_local_url_finding, prepare_linter

log = logging.getLogger(__name__)
LINT_TIMEOUT_SECONDS = 60.0
HELPERS = 1  # per serving process by default; candor serve gives each worker its share of the cores
# The helper lowers its own priority by this much (nice(2): any process may). A lint is pure CPU that one request
# waits for, and with ``cpu_affinity = "auto"`` it runs on the core of the worker that started it; at the same
# priority the kernel shared that core evenly between the lint and the worker's threads, among them whichever holds
# the database's one write lock, whose every other writer then waited too. At nice 10 the worker's threads go first
# and the lint takes the rest of the core (and at least a tenth of it when the core is never idle: a 3 ms lint is
# then ~30 ms, far from LINT_TIMEOUT_SECONDS). bench/acme.py, alternated runs: about 6 % more orders/s (issue 4).
HELPER_NICENESS = 10
HELPER = (
    f"import os, sys; os.nice({HELPER_NICENESS}); "
    "from candor.signing.lint_process import serve; serve(sys.stdin.buffer, sys.stdout.buffer)"
)


class LintProcess:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # one lint at a time per helper: a request and its answer, in order
        self._process: subprocess.Popen[bytes] | None = None
        self._pid = os.getpid()

    def require_clean(
        self, der: bytes, kind: CertificateKind, *, what: str, allow_local_urls: bool = False
    ) -> LintReport:
        """:func:`candor.lint.require_clean`, run in the helper process."""
        request = {"der": base64.b64encode(der).decode(), "kind": kind.value, "what": what, "local": allow_local_urls}
        if self._pid != os.getpid():  # a forked copy: the helper and the lock's state are the parent's
            inherited, self._process = self._process, None
            self._lock, self._pid = threading.Lock(), os.getpid()
            _close_pipes(inherited)  # this process's copies of them; the parent's helper goes on
        with self._lock:
            try:
                answer = self._ask(json.dumps(request).encode() + b"\n")
            except (OSError, ValueError, TimeoutError) as exc:
                self._stop()
                log.warning("the lint process failed (%s); the next lint starts a new one", exc)
                # the linter could not run (fail closed: nothing is signed); not a verdict on the certificate, so
                # UNAVAILABLE, which leaves the order ready for a retry
                raise CandorError(ErrorKind.UNAVAILABLE, f"{what}: the lint process failed ({exc})") from None
            try:
                if "refused" in answer:
                    raise CandorError(ErrorKind(answer["refused"]), str(answer["message"]))
                findings = tuple(Finding(**finding) for finding in answer["findings"])
                report = LintReport(kind=CertificateKind(answer["kind"]), findings=findings)
            except (KeyError, TypeError, ValueError) as exc:  # a reply that is not the helper's protocol
                self._stop()
                raise CandorError(ErrorKind.UNAVAILABLE, f"{what}: the lint process answered garbage") from exc
        errors = [f for f in report.errors if not (allow_local_urls and is_local_url_finding(f))]
        if errors:  # the helper said clean, yet reports errors: the parent does not take its word for it
            raise CandorError(ErrorKind.LINT, f"{what}: pkilint reports {len(errors)} error(s): {errors[0]}")
        return report

    def warm(self, kinds: Sequence[CertificateKind]) -> bool:
        """Start the helper and have it build *kinds*' validators, so that the first lints do not wait for them;
        whether it did. A failure is logged and stops the helper (the next lint starts another): warming is an
        optimisation, never a verdict."""
        if self._pid != os.getpid():
            inherited, self._process = self._process, None
            self._lock, self._pid = threading.Lock(), os.getpid()
            _close_pipes(inherited)
        with self._lock:
            try:
                answer = self._ask(json.dumps({"warm": [kind.value for kind in kinds]}).encode() + b"\n")
            except (OSError, ValueError, TimeoutError) as exc:
                self._stop()
                log.warning("warming a lint process failed (%s)", exc)
                return False
            if "warmed" not in answer:
                log.warning("warming a lint process failed: %s", answer.get("message", answer))
                return False
            return True

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _ask(self, line: bytes) -> dict[str, Any]:
        process = self._running()
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(line)
        process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], LINT_TIMEOUT_SECONDS)
        if not ready:
            raise TimeoutError(f"no answer in {LINT_TIMEOUT_SECONDS:g} s")
        answer = process.stdout.readline()
        if not answer:
            raise OSError(f"it exited with code {process.wait()}")
        parsed = json.loads(answer)
        if not isinstance(parsed, dict):
            raise ValueError("its answer is not a JSON object")
        return parsed

    def _running(self) -> subprocess.Popen[bytes]:
        if self._process is not None and self._process.poll() is not None:  # it ended between two lints
            _close_pipes(self._process)
            self._process = None
        if self._process is None:
            self._process = subprocess.Popen(
                [sys.executable, "-c", HELPER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True
            )
        return self._process

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()
            _close_pipes(process)


class LintPool:
    """*size* :class:`LintProcess` helpers; a lint takes one that is free, waiting while all are busy. Each helper
    starts on its first lint. A forked process gets helpers of its own (each :class:`LintProcess` leaves the
    parent's helper to the parent) and all of them free: its only thread was not linting."""

    def __init__(self, size: int = HELPERS) -> None:
        if size < 1:
            raise ValueError("a lint pool needs at least one helper")
        self._helpers = [LintProcess() for _ in range(size)]
        self._lock = threading.Lock()
        self._pid = -1
        self._free: queue.SimpleQueue[LintProcess] = queue.SimpleQueue()

    def require_clean(
        self, der: bytes, kind: CertificateKind, *, what: str, allow_local_urls: bool = False
    ) -> LintReport:
        """:func:`candor.lint.require_clean`, run in whichever helper is free."""
        free = self._queue()
        helper = free.get()
        try:
            return helper.require_clean(der, kind, what=what, allow_local_urls=allow_local_urls)
        finally:
            free.put(helper)

    def warm(self, kinds: Sequence[CertificateKind]) -> list[threading.Thread]:
        """Start every helper and build *kinds*' validators in it, in background threads (one per helper, holding
        it meanwhile: a lint that comes first waits for a warm helper, as it would for a cold one). The threads,
        for a caller that wants to wait."""
        free = self._queue()

        def warm_one() -> None:
            helper = free.get()
            try:
                helper.warm(kinds)
            finally:
                free.put(helper)

        threads = [threading.Thread(target=warm_one, name="lint-warm", daemon=True) for _ in self._helpers]
        for thread in threads:
            thread.start()
        return threads

    def close(self) -> None:
        for helper in self._helpers:
            helper.close()

    def _queue(self) -> queue.SimpleQueue[LintProcess]:
        with self._lock:
            if self._pid != os.getpid():  # first use, in this process
                self._free = queue.SimpleQueue()
                for helper in self._helpers:
                    self._free.put(helper)
                self._pid = os.getpid()
            return self._free


def _close_pipes(process: subprocess.Popen[bytes] | None) -> None:
    for pipe in (process.stdin, process.stdout) if process is not None else ():
        if pipe is not None:
            pipe.close()


_GC_THRESHOLDS = (10_000, 10, 10)


def serve(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The helper: one JSON request per line, one JSON answer per line, until its input ends."""
    for line in requests:
        request = json.loads(line)
        if "warm" in request:  # build these kinds' validators now: the first lint of each is then no slower
            try:
                for kind in request["warm"]:
                    prepare_linter(CertificateKind(kind))
                # The validators live as long as the helper: leave them out of the collector's passes, and collect
                # the youngest generation less often (as candor serve's processes do; ~5 % of a lint here).
                gc.collect()
                gc.freeze()
                gc.set_threshold(*_GC_THRESHOLDS)
                warmed: dict[str, Any] = {"warmed": len(request["warm"])}
            except Exception as exc:
                warmed = {"refused": ErrorKind.LINT.value, "message": f"{type(exc).__name__}: {exc}"}
            answers.write(json.dumps(warmed).encode() + b"\n")
            answers.flush()
            continue
        try:
            report = require_clean(
                base64.b64decode(request["der"]), CertificateKind(request["kind"]), what=request["what"],
                allow_local_urls=bool(request["local"]),
            )  # fmt: skip
            answer: dict[str, Any] = {
                "kind": report.kind.value,
                "findings": [
                    {"severity": f.severity, "code": f.code, "path": f.path, "message": f.message}
                    for f in report.findings
                ],
            }
        except CandorError as exc:
            answer = {"refused": exc.kind.value, "message": exc.message}
        answers.write(json.dumps(answer).encode() + b"\n")
        answers.flush()


__all__ = ["HELPER", "HELPERS", "LINT_TIMEOUT_SECONDS", "LintPool", "LintProcess", "serve"]
