"""The pure part of the audit log: canonical bytes and hashes."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from candor.audit import GENESIS, canonical_event, event_hash
from candor.audit.chain import (
    canonical_details,
    canonical_json,
    content_hash,
    content_hash_of_text,
    event_hash_of_text,
    is_canonical_details,
)
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


DETAILS_SHAPES: list[dict[str, Any]] = [
    {},
    {"der": "30820122" * 400, "serial": "7a3b19c2"},
    {"b": {"y": [{"k": "v", "a": -1}], "x": 1e-7}, "a": 12345678901234567890, "é": '\u2028 "quoted" \\ \t\n'},
    {"names": ["xn--bcher-kva.example", "例え.テスト"], "none": None, "flag": False, "float": 2.0},
    {"控制": "\x00\x1f\x7f", "emoji": "\U0001f512", "nested": [[[]], {}]},
]


@pytest.mark.parametrize("details", DETAILS_SHAPES)
def test_hashes_from_the_stored_text_are_the_hashes_of_the_canonical_record(details: dict[str, Any]) -> None:
    """The sequencer and the verifier hash an event from its stored details text, placed into the record as it
    is; that must be, byte for byte, the canonical JSON of the whole record (what the hashes always covered)."""
    text = canonical_details(details)
    fields = {**FIELDS, "details": details}
    if details:  # the short fields escaped as json.dumps escapes them: quotes, backslashes, U+2028, non-ASCII
        fields |= {"subject": 'order "7" \\ caf\u00e9 \u2028 \U0001f512', "seq": 12345678901234567890}
    by_text = {k: v for k, v in fields.items() if k != "details"}
    assert event_hash_of_text(**by_text, details_text=text) == hashlib.sha256(canonical_event(**fields)).hexdigest()
    record = {k: v for k, v in fields.items() if k not in ("seq", "prev_hash")}
    expected = canonical_json({**record, "occurred_at": "2026-01-02T03:04:05.000006Z"}).encode()
    content = {k: v for k, v in by_text.items() if k not in ("seq", "prev_hash")}
    assert content_hash_of_text(**content, details_text=text) == hashlib.sha256(expected).hexdigest()
    assert content_hash(**record) == hashlib.sha256(expected).hexdigest()
    assert is_canonical_details(text)


@pytest.mark.parametrize(
    "text",
    ['{"b":1,"a":2}', '{"a": 1}', '{"a":1.0e0}', '{"a":NaN}', '{"a":Infinity}', "[1]", '"x"', "{", "",
     '{"a":"\\u00e9"}', '{"a":"\\ud800"}', '{"a":1,"a":2}', "{}\n"],
)  # fmt: skip
def test_only_canonical_details_text_is_accepted(text: str) -> None:
    assert not is_canonical_details(text)
