"""The pure part of the audit log: canonical bytes and hashes."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from candor.audit import GENESIS, canonical_event, event_hash
from candor.errors import CandorError

WHEN = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
FIELDS: dict[str, Any] = {
    "seq": 1,
    "occurred_at": WHEN,
    "actor": "operator:alice",
    "action": "issuer.create",
    "subject": "issuer:root-x1",
    "outcome": "success",
    "details": {"z": [1, 2.5, None, True], "a": "é"},
    "prev_hash": GENESIS,
}


def test_canonical_form_is_exact() -> None:
    expected = (
        '{"action":"issuer.create","actor":"operator:alice","details":{"a":"é","z":[1,2.5,null,true]},'
        '"occurred_at":"2026-01-02T03:04:05.000006Z","outcome":"success","prev_hash":"' + "0" * 64 + '",'
        '"seq":1,"subject":"issuer:root-x1"}'
    ).encode()
    assert canonical_event(**FIELDS) == expected
    assert event_hash(**FIELDS) == hashlib.sha256(expected).hexdigest()


def test_time_is_normalised_to_utc() -> None:
    elsewhere = WHEN.astimezone(timezone(timedelta(hours=-7)))
    assert event_hash(**{**FIELDS, "occurred_at": elsewhere}) == event_hash(**FIELDS)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seq", 2),
        ("occurred_at", WHEN + timedelta(microseconds=1)),
        ("actor", "operator:bob"),
        ("action", "issuer.retire"),
        ("subject", "issuer:root-x2"),
        ("outcome", "failure"),
        ("details", {"z": [1, 2.5, None, True], "a": "e"}),
        ("prev_hash", "1" * 64),
    ],
)
def test_every_field_is_covered(field: str, value: object) -> None:
    assert event_hash(**{**FIELDS, field: value}) != event_hash(**FIELDS)


@pytest.mark.parametrize(
    "details",
    [
        {"when": WHEN},
        {"raw": b"bytes"},
        {"set": {1, 2}},
        {"tuple": (1, 2)},
        {"nan": float("nan")},
        {"inf": float("inf")},
        {1: "int key"},
        {"nested": {"deep": object()}},
        {"surrogate": "\ud800"},
    ],
)
def test_non_json_details_are_refused(details: dict[str, Any]) -> None:
    with pytest.raises(CandorError):
        event_hash(**{**FIELDS, "details": details})


def test_naive_time_is_refused() -> None:
    with pytest.raises(CandorError):
        event_hash(**{**FIELDS, "occurred_at": datetime(2026, 1, 1)})  # naive on purpose
