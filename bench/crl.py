"""CRL generation at scale (issue 6, acceptance 6): 1,000,000 revoked certificates of one issuing CA, across
its 16 shards, generated, checked and published.

The serial rows are inserted directly with Core SQL (random 128-bit serials, revocation times spread over the
last five days, the BR 7.2.2 reasons in a mix; certificates valid for 90 days), then ``CrlGenerator.generate_all``
is timed: per shard, the revoked serials are read, the CRL assembled in one pass, every entry checked, pkilint
run on a 1,000-entry sample of the same shape (the shard has more than 10,000 entries), the CRL signed with the
issuer's key (file key store), parsed back and checked, and written atomically. SQLite, as ``candor serve``'s
embedded default. The last line printed is one JSON object with ``seconds``.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "issuance"), str(ROOT / "tests" / "crl")]

from crl_support import generator_for  # type: ignore[import-not-found]  # noqa: E402
from issuing import build_home, open_ca  # type: ignore[import-not-found]  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from candor.revocation.crl.generate import ShardResult  # noqa: E402
from candor.storage import serial_to_hex  # noqa: E402
from candor.storage.models import SerialRecord  # noqa: E402

COUNT = int(os.environ.get("BENCH_CRL_COUNT", "1000000"))
BATCH = 50_000
REASONS = (0, 1, 3, 4, 5, 9)


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        ca = open_ca(build_home(Path(scratch) / "home"))
        generator = generator_for(ca)
        issuer_id = generator.issuer_id("tls-e1")
        now = ca.clock.now()
        started = time.perf_counter()
        rows = _insert(ca, issuer_id, now)
        print(f"inserted {rows:,} revoked serials in {time.perf_counter() - started:.1f} s", flush=True)

        def progress(result: ShardResult) -> None:
            rate = result.entries / result.seconds
            print(f"  shard {result.shard:2d}: {result.entries:,} entries, {result.seconds:.2f} s, {rate:,.0f}/s")

        generator.progress = progress
        started = time.perf_counter()
        results = generator.generate_all(issuer_id)
        seconds = time.perf_counter() - started
        entries = sum(r.entries for r in results)
        size = sum(r.path.stat().st_size for r in results)
        assert entries == rows and all(r.published for r in results)
        print(f"{len(results)} CRLs, {entries:,} entries, {size / 1e6:.1f} MB, in {seconds:.1f} s", flush=True)
        ca.stores.close()
        ca.db.dispose()
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "entries": entries,
                "shards": len(results),
                "entries_per_s": round(entries / seconds),
                "bytes": size,
                "cores": os.cpu_count(),
                "database": "sqlite",
            }
        )
    )


def _insert(ca: object, issuer_id: int, now: object) -> int:
    rng = random.Random(6)
    seen: set[str] = set()
    with ca.db.session() as session:  # type: ignore[attr-defined]
        while len(seen) < COUNT:
            batch = []
            while len(batch) < BATCH and len(seen) < COUNT:
                serial = serial_to_hex(secrets.randbits(128) or 1)
                if serial in seen:
                    continue
                seen.add(serial)
                revoked_at = now - timedelta(seconds=rng.randrange(5 * 86400))  # type: ignore[operator]
                batch.append(
                    {
                        "issuer_id": issuer_id,
                        "serial_hex": serial,
                        "status": "revoked",
                        "revoked_at": revoked_at,
                        "revocation_reason": rng.choice(REASONS),
                        "expires_at": revoked_at + timedelta(days=90),
                        "created_at": revoked_at,
                    }
                )
            session.execute(insert(SerialRecord), batch)
    return len(seen)


if __name__ == "__main__":
    main()
