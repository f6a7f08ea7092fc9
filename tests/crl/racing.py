"""Run by the race test in a process of its own: generate one shard's CRL ROUNDS times, print the numbers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS), str(TESTS / "issuance"), str(TESTS / "crl")]

from crl_support import generator_for  # noqa: E402
from issuing import open_ca  # noqa: E402


def main(home: str, shard: int, rounds: int) -> None:
    ca = open_ca(Path(home))
    try:
        generator = generator_for(ca)
        issuer = generator.prepare(generator.issuer_id("tls-e1"))
        numbers = [generator.generate_shard(issuer, shard).number for _ in range(rounds)]
    finally:
        ca.stores.close()
        ca.db.dispose()
    print(json.dumps(numbers))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
