"""DESIGN.md trust boundaries: the internet-facing responder never loads a key store or the signer."""

from __future__ import annotations

import subprocess
import sys


def test_the_http_responder_does_not_load_the_keys_or_the_signer() -> None:
    code = (
        "import sys, candor.revocation.ocsp.http, candor.revocation.ocsp.protocol, candor.revocation.ocsp.shared; "
        "print('\\n'.join(m for m in sys.modules if m.startswith('candor')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    crossing = [m for m in loaded if m.startswith(("candor.keys", "candor.issuance", "candor.signing"))]
    assert "candor.revocation.ocsp.http" in loaded
    assert crossing == []
