"""Candor's RFC 6962 Certificate Transparency log, with the static-ct-api read path written as files.

Serving a log (what ``candor serve`` does for each ``[[ct.logs]]`` entry)::

    ct_log = open_log(settings, db=db, clock=clock, stores=stores, data_dir=data_dir, public_base_url=base)
    ct_log.start()                                   # first tree head, then the writer and the sequencer
    routes = ct_log_routes(ct_log, prefix=settings.prefix)
    ...
    ct_log.close()                                   # stores and integrates what was queued

Names are imported on first use (PEP 562), so that :mod:`candor.config` can read :mod:`.settings` without
loading storage or the web stack, and so that the HTTP routes never load the key stores (:mod:`.keys`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from candor.ct.log.app import ct_log_routes
    from candor.ct.log.chain import Submission, SubmissionError
    from candor.ct.log.keys import log_signer, open_log
    from candor.ct.log.merkle import ProofError, verify_consistency, verify_inclusion
    from candor.ct.log.service import CtLog, LogParameters, LogRequestError, Sct, SharedWriter
    from candor.ct.log.settings import CtConfig, CtLogSettings
    from candor.ct.log.signer import EcdsaSigner, LogSigner, SignedTreeHead

_WHERE = {
    "ct_log_routes": "app",
    "Submission": "chain",
    "SubmissionError": "chain",
    "log_signer": "keys",
    "open_log": "keys",
    "ProofError": "merkle",
    "verify_consistency": "merkle",
    "verify_inclusion": "merkle",
    "CtLog": "service",
    "LogParameters": "service",
    "LogRequestError": "service",
    "Sct": "service",
    "SharedWriter": "service",
    "CtConfig": "settings",
    "CtLogSettings": "settings",
    "EcdsaSigner": "signer",
    "LogSigner": "signer",
    "SignedTreeHead": "signer",
}

__all__ = [
    "CtConfig",
    "CtLog",
    "CtLogSettings",
    "EcdsaSigner",
    "LogParameters",
    "LogRequestError",
    "LogSigner",
    "ProofError",
    "Sct",
    "SharedWriter",
    "SignedTreeHead",
    "Submission",
    "SubmissionError",
    "ct_log_routes",
    "log_signer",
    "open_log",
    "verify_consistency",
    "verify_inclusion",
]


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
