"""The CT audit tests reuse the CT log tests' helpers (tests/ct), the signer tests' CA (tests/issuance) and the
CT submission tests' logs on loopback (tests/ct_submit)."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
for _directory in (TESTS / "ct", TESTS / "issuance", TESTS / "ct_submit"):
    if str(_directory) not in sys.path:
        sys.path.insert(0, str(_directory))
