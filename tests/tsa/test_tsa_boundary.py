"""DESIGN.md trust boundaries: what answers requests from the Internet (the HTTP app, the service, the request
parser, the token signer) never loads a key store, the signing machinery of the CAs, or the signer."""

from __future__ import annotations

import subprocess
import sys


def test_the_internet_facing_tsa_does_not_load_key_stores_or_ca_signing() -> None:
    code = (
        "import sys, candor.tsa.http, candor.tsa.service, candor.tsa.lifecycle, candor.tsa.verify; "
        "print('\\n'.join(m for m in sys.modules if m.startswith('candor')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert "candor.tsa.service" in loaded
    crossing = [m for m in loaded if m.startswith(("candor.keys", "candor.issuance", "candor.signing", "candor.cli"))]
    assert crossing == []


def test_the_tsa_settings_load_without_storage() -> None:
    """candor.config reads [tsa] without the storage layer (tests/test_boundaries.py's rule for candor.config)."""
    code = "import sys, candor.tsa.settings; print('\\n'.join(m for m in sys.modules if m.startswith('candor')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert not [m for m in loaded if m.startswith(("candor.storage", "candor.keys"))]
