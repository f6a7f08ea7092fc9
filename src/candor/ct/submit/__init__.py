"""CA-side Certificate Transparency: the log list, SCT verification, the CT policy, and submission.

Wiring (what ``candor serve`` and ``build_signer`` do)::

    submitter = CtSubmitter.from_settings(config.ct.submit, data_dir=home, clock=clock,
                                          ca_certificates=all_issuer_certificates, db=db)
    signer = Signer(..., sct_source=submitter)          # obtain(): precertificate -> SCT list, or UNAVAILABLE
    final = FinalSubmissions(db=db, submitter=submitter, clock=clock)
    final.submit_final(issued.certificate)             # after each finalize; failures queue durably
    threading.Thread(target=run_drain_loop, args=(final,), kwargs={"clock": clock, "stop": stop}).start()

Names are imported on first use (PEP 562), so that :mod:`candor.config` can read :mod:`.settings` without
loading storage or the web stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from candor.ct.submit.client import CtSubmitter, LogOutcome, Target
    from candor.ct.submit.final import DrainReport, FinalSubmissions, run_drain_loop
    from candor.ct.submit.loglist import LogInfo, LogKind, LogList, LogState, load_log_list, parse_log_list
    from candor.ct.submit.policy import Verdict, evaluate
    from candor.ct.submit.sct import Sct, SctError, VerifiedSct, embedded_scts, verify_sct
    from candor.ct.submit.settings import CtLogOverride, CtSubmitSettings
    from candor.ct.submit.transport import HttpAnswer, HttpTransport, Transport, TransportError

_WHERE = {
    "CtSubmitter": "client",
    "LogOutcome": "client",
    "Target": "client",
    "DrainReport": "final",
    "FinalSubmissions": "final",
    "run_drain_loop": "final",
    "LogInfo": "loglist",
    "LogKind": "loglist",
    "LogList": "loglist",
    "LogState": "loglist",
    "load_log_list": "loglist",
    "parse_log_list": "loglist",
    "Verdict": "policy",
    "evaluate": "policy",
    "Sct": "sct",
    "SctError": "sct",
    "VerifiedSct": "sct",
    "embedded_scts": "sct",
    "verify_sct": "sct",
    "CtLogOverride": "settings",
    "CtSubmitSettings": "settings",
    "HttpAnswer": "transport",
    "HttpTransport": "transport",
    "Transport": "transport",
    "TransportError": "transport",
}

__all__ = [
    "CtLogOverride",
    "CtSubmitSettings",
    "CtSubmitter",
    "DrainReport",
    "FinalSubmissions",
    "HttpAnswer",
    "HttpTransport",
    "LogInfo",
    "LogKind",
    "LogList",
    "LogOutcome",
    "LogState",
    "Sct",
    "SctError",
    "Target",
    "Transport",
    "TransportError",
    "Verdict",
    "VerifiedSct",
    "embedded_scts",
    "evaluate",
    "load_log_list",
    "parse_log_list",
    "run_drain_loop",
    "verify_sct",
]


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
