"""The signer: the issuance cycle of DESIGN.md, with its own re-checks (WoSign "Incident 1")."""

from __future__ import annotations

from candor.issuance.csr import ParsedCsr, parse_csr
from candor.issuance.ct import SctSource
from candor.issuance.issuers import IssuerContext, IssuerResolver
from candor.issuance.signer import IssuanceSettings, IssuedChain, Signer, random_serial

__all__ = [
    "IssuanceSettings",
    "IssuedChain",
    "IssuerContext",
    "IssuerResolver",
    "ParsedCsr",
    "SctSource",
    "Signer",
    "parse_csr",
    "random_serial",
]
