"""Signing what was linted: single-use tokens over stored TBSCertificates, for the ceremony and the signer."""

from __future__ import annotations

from candor.signing.der import final_tbs_from_precertificate
from candor.signing.linted import (
    SigningToken,
    corresponding_final,
    lint_in_helper_process,
    prepare,
    prepare_tbs,
    sign,
    token_for_stored_tbs,
    verify_signature,
)

__all__ = [
    "SigningToken",
    "corresponding_final",
    "final_tbs_from_precertificate",
    "lint_in_helper_process",
    "prepare",
    "prepare_tbs",
    "sign",
    "token_for_stored_tbs",
    "verify_signature",
]
