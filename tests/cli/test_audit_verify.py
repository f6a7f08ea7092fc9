"""Acceptance 4: editing, deleting or reordering one audit row makes `candor audit verify` fail and name it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from candor.config import database_url, load_config
from candor.storage import Database
from support import assert_one_line_error, ceremony_file, make_home, run_cli


@pytest.fixture
def home(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    url = "sqlite:///candor.db"
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_schema_url")
    home = make_home(tmp_path, database_url=url)
    assert run_cli("--data-dir", home, "ceremony", "--config", ceremony_file(home / "c.toml")).code == 0
    return home


def _execute(home: Path, *statements: str) -> None:
    db = Database(database_url(load_config(home).database, home))
    try:
        with db.engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        db.dispose()


def _swap(a: int, b: int) -> tuple[str, ...]:
    """Swap the positions of two rows, each keeping all its contents: the order of events changes."""
    parked = 1_000_000
    return (
        f"UPDATE audit_events SET seq = {parked} WHERE seq = {a}",
        f"UPDATE audit_events SET seq = {a} WHERE seq = {b}",
        f"UPDATE audit_events SET seq = {b} WHERE seq = {parked}",
    )


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
TAMPERING: dict[str, tuple[Callable[[], tuple[str, ...]], str]] = {
    "edit-details": (lambda: ("UPDATE audit_events SET details = '{}' WHERE seq = 7",), "event 7"),
    "edit-actor": (lambda: ("UPDATE audit_events SET actor = 'someone else' WHERE seq = 4",), "event 4"),
    "delete": (lambda: ("DELETE FROM audit_events WHERE seq = 5",), "event 6"),
    "reorder": (lambda: _swap(8, 9), "event 8"),
}


@pytest.mark.parametrize("home", BACKENDS, indirect=True)
def test_intact_log_verifies(home: Path) -> None:
    result = run_cli("--data-dir", home, "audit", "verify")
    assert result.code == 0, result.err
    assert "audit log intact" in result.out


@pytest.mark.parametrize("home", BACKENDS, indirect=True)
@pytest.mark.parametrize("tampering", sorted(TAMPERING))
def test_tampering_is_found_and_the_row_named(home: Path, tampering: str) -> None:
    statements, named = TAMPERING[tampering]
    _execute(home, *statements())
    result = run_cli("--data-dir", home, "audit", "verify")
    assert_one_line_error(result, "audit log broken", named)
    assert result.code == 8


@pytest.mark.parametrize("home", ["sqlite"], indirect=True)
def test_truncating_the_tail_is_found_with_an_anchor(home: Path) -> None:
    head = run_cli("--data-dir", home, "audit", "verify").out.split("head ")[1].strip()
    last = int(head.split(":")[0])
    _execute(home, f"DELETE FROM audit_events WHERE seq = {last}")
    assert run_cli("--data-dir", home, "audit", "verify").code == 0  # a shorter chain is still a chain...
    result = run_cli("--data-dir", home, "audit", "verify", "--anchor", head)
    assert_one_line_error(result, "audit log broken")  # ...but not the one recorded earlier
