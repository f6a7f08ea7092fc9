"""Revocation: the revocation record (:mod:`.record`), sharded CRLs (:mod:`.crl`) and the pre-signed OCSP
responder (:mod:`.ocsp`), all built from it.

Names are imported on first use (PEP 562), so that :mod:`candor.config` can read the ``[ocsp]`` settings model
without loading the storage layer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from candor.revocation.record import RevocationReason, parse_reason, revoke

__all__ = ["RevocationReason", "parse_reason", "revoke"]


def __getattr__(name: str) -> object:
    if name in __all__:
        return getattr(importlib.import_module("candor.revocation.record"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
