"""The pure part of the audit log: canonical serialisation of an event and its SHA-256 hash.

An event's hash covers, as one canonical JSON object (keys sorted, no whitespace, UTF-8, non-ASCII kept
as is), its ``seq``, ``occurred_at`` (ISO-8601 UTC with microseconds and ``Z``), ``actor``, ``action``,
``subject``, ``outcome``, ``details`` (a JSON object) and ``prev_hash``, the hash of the event before it
(:data:`GENESIS` for the first). Changing any of these, or the order of events, changes the hashes.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from json.encoder import encode_basestring  # the C encoder json.dumps uses
from typing import Any

from candor.errors import CandorError, ErrorKind

GENESIS = "0" * 64


def _check_json(value: Any, path: str) -> None:
    """Refuse anything that would not survive a JSON round trip unchanged."""
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CandorError(ErrorKind.INTERNAL, f"audit details {path}: {value!r} is not representable in JSON")
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{path}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CandorError(ErrorKind.INTERNAL, f"audit details {path}: keys must be strings, not {key!r}")
            _check_json(item, f"{path}.{key}")
        return
    raise CandorError(
        ErrorKind.INTERNAL,
        f"audit details {path}: {type(value).__name__} is not JSON (use str, int, list, dict...)",
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_json(value: Any) -> str:
    """Canonical JSON text: sorted keys, no whitespace, non-ASCII characters kept (UTF-8 when encoded)."""
    _check_json(value, "$")
    try:
        text = _dumps(value)
        text.encode("utf-8")
    except (TypeError, ValueError):
        raise CandorError(ErrorKind.INTERNAL, "audit details are not valid JSON text") from None
    return text


def _record_bytes(fields: dict[str, str | int], details_text: str) -> bytes:
    """``canonical_json`` of *fields* plus ``"details"``, UTF-8 encoded, where *details_text* is the details'
    canonical JSON (:func:`canonical_details`), placed as it is rather than serialised again: ``json.dumps``
    writes a nested object exactly as it writes it alone (same separators, sorted keys, escaping), and the
    record's keys are sorted here as it sorts them (tests/audit/test_audit_chain.py compares the two). An
    event's details can be kilobytes (a certificate's DER in hex); the other fields are short strings and
    integers, written with the functions ``json.dumps`` itself uses for them."""
    try:
        parts = [
            f"{encode_basestring(key)}:{details_text if key == 'details' else _scalar(fields[key])}"
            for key in sorted([*fields, "details"])
        ]
        return ("{" + ",".join(parts) + "}").encode("utf-8")
    except (TypeError, ValueError):
        raise CandorError(ErrorKind.INTERNAL, "audit event fields are not valid JSON text") from None


def _scalar(value: str | int) -> str:
    """A string or an integer as ``json.dumps(..., ensure_ascii=False)`` writes it."""
    if isinstance(value, str):
        return encode_basestring(value)
    if type(value) is int:
        return int.__repr__(value)
    raise TypeError(f"{type(value).__name__} is not an audit event field")


def canonical_details(details: Any) -> str:
    """The stored form of an event's details: a JSON object in canonical form."""
    if not isinstance(details, dict):
        raise CandorError(ErrorKind.INTERNAL, f"audit details must be a JSON object, not {type(details).__name__}")
    return canonical_json(details)


def format_time(moment: datetime) -> str:
    """ISO-8601 UTC with microseconds and 'Z', e.g. 2026-01-01T00:00:00.000000Z."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise CandorError(ErrorKind.INTERNAL, "audit event time must be timezone-aware")
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def canonical_event(
    *,
    seq: int,
    occurred_at: datetime,
    actor: str,
    action: str,
    subject: str,
    outcome: str,
    details: dict[str, Any],
    prev_hash: str,
) -> bytes:
    """The exact bytes an event's hash is computed over."""
    record = {
        "seq": seq,
        "occurred_at": format_time(occurred_at),
        "actor": actor,
        "action": action,
        "subject": subject,
        "outcome": outcome,
        "details": details,
        "prev_hash": prev_hash,
    }
    return canonical_json(record).encode("utf-8")


def event_hash(
    *,
    seq: int,
    occurred_at: datetime,
    actor: str,
    action: str,
    subject: str,
    outcome: str,
    details: dict[str, Any],
    prev_hash: str,
) -> str:
    """Lowercase hex SHA-256 of :func:`canonical_event`."""
    return event_hash_of_text(
        seq=seq, occurred_at=occurred_at, actor=actor, action=action, subject=subject, outcome=outcome,
        details_text=canonical_details(details), prev_hash=prev_hash,
    )  # fmt: skip


def event_hash_of_text(
    *,
    seq: int,
    occurred_at: datetime,
    actor: str,
    action: str,
    subject: str,
    outcome: str,
    details_text: str,
    prev_hash: str,
) -> str:
    """:func:`event_hash` of an event whose details are given as their canonical JSON text (as stored)."""
    fields: dict[str, str | int] = {
        "seq": seq, "occurred_at": format_time(occurred_at), "actor": actor, "action": action, "subject": subject,
        "outcome": outcome, "prev_hash": prev_hash,
    }  # fmt: skip
    return hashlib.sha256(_record_bytes(fields, details_text)).hexdigest()


def content_hash(
    *, occurred_at: datetime, actor: str, action: str, subject: str, outcome: str, details: dict[str, Any]
) -> str:
    """Lowercase hex SHA-256 of an appended event's contents, before it has a place in the chain (no ``seq``,
    no ``prev_hash``): stored beside a pending event and checked again when the sequencer chains it."""
    return content_hash_of_text(
        occurred_at=occurred_at, actor=actor, action=action, subject=subject, outcome=outcome,
        details_text=canonical_details(details),
    )  # fmt: skip


def content_hash_of_text(
    *, occurred_at: datetime, actor: str, action: str, subject: str, outcome: str, details_text: str
) -> str:
    """:func:`content_hash` of an event whose details are given as their canonical JSON text (as stored)."""
    fields: dict[str, str | int] = {
        "occurred_at": format_time(occurred_at), "actor": actor, "action": action, "subject": subject,
        "outcome": outcome,
    }  # fmt: skip
    return hashlib.sha256(_record_bytes(fields, details_text)).hexdigest()


def is_canonical_details(text: str) -> bool:
    """Whether *text* is a JSON object in its canonical form (what :func:`canonical_details` makes of it). Parsed
    JSON holds only JSON values, so it is serialised again without :func:`canonical_json`'s walk; NaN and the
    infinities, which the parser accepts, are refused by the serialiser. A text holding a raw lone surrogate
    (which :func:`canonical_details` never makes, and no UTF-8 store holds) passes here and is refused when the
    record is encoded for its hash."""
    try:
        details = json.loads(text)
        return isinstance(details, dict) and _dumps(details) == text
    except (ValueError, RecursionError):
        return False
