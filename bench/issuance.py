"""Issuance throughput: the full precertificate + final certificate path on one core.

For a P-256 and an RSA-2048 issuing CA (a private hierarchy, so no CT round trip is measured), it times
``Signer.finalize`` for already-authorized orders: CSR checks, authorization re-check, two templates, one
pkilint run (the precertificate; the final certificate is admitted by its BR 4.3.1.2 correspondence), two
signatures, five small transactions on SQLite, the audit events. The last line printed
is one JSON object: certs_per_s (P-256 issuer), lint_share, rsa2048_certs_per_s, and what was measured.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "issuance")]

from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from issuing import build_home, csr_for, open_ca  # type: ignore[import-not-found]  # noqa: E402

import candor.lint.certificates as lint_module  # noqa: E402

COUNT = int(os.environ.get("BENCH_ISSUANCE_COUNT", "200"))
WARMUP = 5


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    lint_seconds = 0.0
    original = lint_module.lint_certificate

    def timed_lint(der: bytes, kind: lint_module.CertificateKind) -> lint_module.LintReport:
        nonlocal lint_seconds
        started = time.perf_counter()
        try:
            return original(der, kind)
        finally:
            lint_seconds += time.perf_counter() - started

    lint_module.lint_certificate = timed_lint  # type: ignore[assignment]
    results: dict[str, float] = {}
    shares: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as scratch:
        home = build_home(Path(scratch) / "home", rsa_issuer="rsa-2048")
        ca = open_ca(home, validity_days=90)
        account = ca.account("bench")
        ca.authorize(account, "bench.example.com", method="3.2.2.4.7")
        key = ec.generate_private_key(ec.SECP256R1())
        for issuer in ("tls-e1", "tls-r1"):
            work = []
            for index in range(COUNT + WARMUP):
                name = f"h{index}.{issuer}.bench.example.com"
                work.append((ca.order(account, [name], issuer=issuer), csr_for([name], key=key)))
            for order_id, csr in work[:WARMUP]:
                ca.signer.finalize(order_id, csr)
            lint_seconds = 0.0
            started = time.perf_counter()
            for order_id, csr in work[WARMUP:]:
                ca.signer.finalize(order_id, csr)
            elapsed = time.perf_counter() - started
            results[issuer] = COUNT / elapsed
            shares[issuer] = lint_seconds / elapsed
            rate, share = results[issuer], shares[issuer]
            print(f"{issuer}: {COUNT} certificates in {elapsed:.2f} s = {rate:.1f}/s, lint {share:.0%}")
        ca.stores.close()
        ca.db.dispose()
    print(
        json.dumps(
            {
                "certs_per_s": round(results["tls-e1"], 1),
                "lint_share": round(shares["tls-e1"], 3),
                "rsa2048_certs_per_s": round(results["tls-r1"], 1),
                "rsa2048_lint_share": round(shares["tls-r1"], 3),
                "certificates": COUNT,
                "cores": 1,
                "database": "sqlite",
                "lints_per_certificate": 1,
            }
        )
    )


if __name__ == "__main__":
    main()
