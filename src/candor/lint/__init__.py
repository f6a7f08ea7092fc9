"""The pkilint gate.

Every certificate Candor signs is linted first, and a linter that cannot run counts as a failed lint (fail
closed). Validator containers are expensive to build, so each kind is built once per process and reused.
"""

from __future__ import annotations

from candor.lint.certificates import (
    CertificateKind,
    Finding,
    LintReport,
    is_local_url_finding,
    kind_for,
    lint_certificate,
    lint_detected,
    require_clean,
)

__all__ = [
    "CertificateKind",
    "Finding",
    "LintReport",
    "is_local_url_finding",
    "kind_for",
    "lint_certificate",
    "lint_detected",
    "require_clean",
]
