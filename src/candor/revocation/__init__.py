"""Revocation: the revocation record, and (with the revocation issue) CRLs and OCSP built from it."""

from __future__ import annotations

from candor.revocation.revoke import RevocationReason, parse_reason, revoke

__all__ = ["RevocationReason", "parse_reason", "revoke"]
