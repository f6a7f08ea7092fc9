"""The clock-integrity tests reuse the signer tests' CA (tests/issuance) for the issuance gate."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS / "issuance") not in sys.path:
    sys.path.insert(0, str(TESTS / "issuance"))
