"""CRLNumbers are strictly increasing with two generators racing (threads on SQLite and PostgreSQL, processes
on PostgreSQL), and what is served never goes back to a lower number (BR 7.2.1; RFC 5280 5.2.3)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from crl_support import generator_for, published
from cryptography import x509
from issuing import CA, build_home, open_ca
from sqlalchemy import select

from candor.storage.models_crl import CrlShard

ROUNDS = 8
SHARD = 5


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def racing_ca(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CA]:
    url = "sqlite:///candor.db" if request.param == "sqlite" else request.getfixturevalue("postgres_schema_url")
    ca = open_ca(build_home(tmp_path / "home", database=url))
    yield ca
    ca.stores.close()
    ca.db.dispose()


def _served_number(ca: CA) -> int:
    with ca.db.session() as session:
        row = session.scalars(select(CrlShard).where(CrlShard.shard == SHARD)).one()
    number = published(ca, SHARD).extensions.get_extension_for_class(x509.CRLNumber)
    assert row.number == number.value.crl_number
    return int(number.value.crl_number)


def test_two_threads_draw_distinct_numbers_and_the_highest_is_served(racing_ca: CA) -> None:
    ca = racing_ca
    generators = [generator_for(ca), generator_for(ca)]
    issuer = generators[0].prepare(generators[0].issuer_id("tls-e1"))
    numbers: list[list[int]] = [[], []]
    barrier = threading.Barrier(2)

    def run(index: int) -> None:
        barrier.wait()
        for _ in range(ROUNDS):
            numbers[index].append(generators[index].generate_shard(issuer, SHARD).number)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    drawn = numbers[0] + numbers[1]
    assert len(set(drawn)) == 2 * ROUNDS
    assert all(a < b for run_numbers in numbers for a, b in itertools.pairwise(run_numbers))
    assert _served_number(ca) == max(drawn)


@pytest.mark.postgres
def test_two_processes_draw_distinct_numbers_on_postgresql(postgres_schema_url: str, tmp_path: Path) -> None:
    home = build_home(tmp_path / "home", database=postgres_schema_url)
    script = Path(__file__).with_name("racing.py")
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), str(home), str(SHARD), str(ROUNDS)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert all(process.returncode == 0 for process in processes)
    first, second = (json.loads(output.strip().splitlines()[-1]) for output in outputs)
    assert len(set(first) | set(second)) == 2 * ROUNDS
    assert first == sorted(first) and second == sorted(second)
    ca = open_ca(home)
    try:
        assert _served_number(ca) == max(first + second)
        # A restart continues from the stored counter.
        generator = generator_for(ca)
        after = generator.generate_shard(generator.prepare(generator.issuer_id("tls-e1")), SHARD).number
        assert after == max(first + second) + 1
    finally:
        ca.stores.close()
        ca.db.dispose()
