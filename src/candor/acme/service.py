"""The ACME resources (RFC 8555 7): accounts, orders, authorizations, challenges, finalization, certificates,
revocation and renewal information, as one service.

Handlers are synchronous: a request thread runs them, or the event loop for the reads that cannot wait
(:mod:`candor.acme.app`); each returns (status, JSON body or PEM, headers). The
signer is reached only through the :class:`Finalizer` interface, and validation through :class:`Validator`:
this package never holds a CA key (DESIGN.md, trust boundaries).
"""

from __future__ import annotations

from candor.acme.accounts import Accounts
from candor.acme.challenges import Challenges
from candor.acme.core import AcmeSettings, Finalizer, Reply, Validator
from candor.acme.ordering import Ordering
from candor.acme.renewal import Renewal
from candor.acme.revocation import Revocation


class AcmeService(Accounts, Ordering, Challenges, Revocation, Renewal):
    """Every ACME resource; the HTTP edge (:mod:`candor.acme.app`) routes requests to its methods."""


__all__ = ["AcmeService", "AcmeSettings", "Finalizer", "Reply", "Validator"]
