"""The CT submission tests reuse the CT log tests' PKI (tests/ct/ct_pki.py) and the signer tests' CA helpers
(tests/issuance/issuing.py)."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
for _directory in (TESTS / "ct", TESTS / "issuance"):
    if str(_directory) not in sys.path:
        sys.path.insert(0, str(_directory))
