"""Submission to the logs this process itself serves, without a round trip through its own HTTP listener.

``candor serve`` runs its own logs and must be able to log a precertificate before its listeners accept
connections (the ACME listener's own certificate is issued at start-up). The submitter hands a submission for
one of those logs' submission URLs to the log object itself (:meth:`LocalLogs.log_for`: the log's own chain
checks, then its writer's future; no thread hop, no JSON) and checks the SCT that comes back exactly as it
checks any other log's (:class:`candor.ct.submit.client.InFlight`). As a transport, :class:`LocalLogs` answers
POSTs for those URLs by calling the log directly, with the same JSON in and out as the RFC 6962 4.1/4.2
endpoints (the submitter's retries go this way); every other URL goes to the next transport (HTTP).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Protocol

from candor.ct.submit.transport import HttpAnswer, HttpTransport, Transport

ADD_CHAIN, ADD_PRE_CHAIN = "ct/v1/add-chain", "ct/v1/add-pre-chain"


class LocalSct(Protocol):
    """What the submitter reads of an SCT a log in this process returns (:class:`candor.ct.log.Sct`)."""

    def serialize(self) -> bytes: ...  # RFC 6962 3.3 SerializedSCT: parsed and verified like any other

    def to_json(self) -> dict[str, object]: ...  # RFC 6962 4.1 add-chain response


class LocalLog(Protocol):
    """What :class:`LocalLogs` needs of :class:`candor.ct.log.CtLog`."""

    def add_chain(self, ders: Sequence[bytes], *, precertificate: bool, timeout: float = 30.0) -> LocalSct: ...

    def check(self, ders: Sequence[bytes], *, precertificate: bool) -> Any: ...  # a Submission, or SubmissionError

    def submit(self, submission: Any) -> Future[Any]: ...  # resolves to a LocalSct once the entry is stored


def _error(status: int, message: str) -> HttpAnswer:
    return HttpAnswer(status, json.dumps({"error": message}).encode())


class LocalLogs:
    """A transport that hands submissions for *logs* (submission URL prefix, ending in '/', to log) to the log
    objects themselves, and anything else to *fallback*."""

    def __init__(self, logs: Mapping[str, LocalLog], *, fallback: Transport | None = None) -> None:
        for prefix in logs:
            if not prefix.endswith("/"):
                raise ValueError(f"a log's submission URL ends with '/': {prefix}")
        self._logs = dict(logs)
        self._fallback = fallback or HttpTransport()

    def log_for(self, submission_url: str) -> LocalLog | None:
        """The log served here whose submission URL (ending in '/') is *submission_url*, if any."""
        return self._logs.get(submission_url)

    def post_json(self, url: str, body: bytes, *, timeout: float) -> HttpAnswer:
        for prefix, log in self._logs.items():
            if url.startswith(prefix) and url[len(prefix) :] in (ADD_CHAIN, ADD_PRE_CHAIN):
                return self._submit(log, body, precertificate=url.endswith(ADD_PRE_CHAIN), timeout=timeout)
        return self._fallback.post_json(url, body, timeout=timeout)

    @staticmethod
    def _submit(log: LocalLog, body: bytes, *, precertificate: bool, timeout: float) -> HttpAnswer:
        from candor.ct.log import LogRequestError, SubmissionError

        try:
            chain = json.loads(body)["chain"]
            ders = [base64.b64decode(item, validate=True) for item in chain]
        except (ValueError, KeyError, TypeError, binascii.Error):
            return _error(400, "the body is not {'chain': [base64 DER, ...]} (RFC 6962 4.1)")
        try:
            sct = log.add_chain(ders, precertificate=precertificate, timeout=timeout)
        except (SubmissionError, LogRequestError) as exc:
            return _error(400, str(exc))
        except FutureTimeout:
            return _error(503, "the log did not store the entry in time")
        except Exception as exc:  # the log's queue is full or its database is down: retry later, as over HTTP
            return _error(503, f"the log cannot take submissions now ({type(exc).__name__})")
        return HttpAnswer(200, json.dumps(sct.to_json()).encode())
