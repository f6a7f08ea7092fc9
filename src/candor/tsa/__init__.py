"""The time-stamping authority (RFC 3161, RFC 5816; CA/B Forum Code Signing BR 6.8, 6.3.2, 7.1.2.3).

A request is parsed strictly (:mod:`.request`), answered by :class:`~candor.tsa.service.TsaService` with a token
signed by the current TSA unit (:mod:`.token`, :mod:`.units`) once the clock watch says the clock may be
trusted and the token's record is durable (:mod:`.records`), and served over HTTP by
:class:`~candor.tsa.http.TsaApp`. Units are certified by the time-stamping sub-CA (:mod:`.certify`, which alone
touches a CA key); tokens are checked by :mod:`.verify`.

Names are imported on first use (PEP 562), so that :mod:`candor.config` can read the ``[tsa]`` settings without
loading the storage layer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from candor.tsa.http import TsaApp
    from candor.tsa.service import TsaService
    from candor.tsa.settings import TsaSettings

_WHERE = {"TsaApp": "candor.tsa.http", "TsaService": "candor.tsa.service", "TsaSettings": "candor.tsa.settings"}
__all__ = ["TsaApp", "TsaService", "TsaSettings"]


def __getattr__(name: str) -> object:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
