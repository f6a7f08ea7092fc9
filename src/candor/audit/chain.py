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


def canonical_json(value: Any) -> str:
    """Canonical JSON text: sorted keys, no whitespace, non-ASCII characters kept (UTF-8 when encoded)."""
    _check_json(value, "$")
    try:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")
    except (TypeError, ValueError):
        raise CandorError(ErrorKind.INTERNAL, "audit details are not valid JSON text") from None
    return text


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
    encoded = canonical_event(
        seq=seq,
        occurred_at=occurred_at,
        actor=actor,
        action=action,
        subject=subject,
        outcome=outcome,
        details=details,
        prev_hash=prev_hash,
    )
    return hashlib.sha256(encoded).hexdigest()


def content_hash(
    *, occurred_at: datetime, actor: str, action: str, subject: str, outcome: str, details: dict[str, Any]
) -> str:
    """Lowercase hex SHA-256 of an appended event's contents, before it has a place in the chain (no ``seq``,
    no ``prev_hash``): stored beside a pending event and checked again when the sequencer chains it."""
    record = {
        "occurred_at": format_time(occurred_at),
        "actor": actor,
        "action": action,
        "subject": subject,
        "outcome": outcome,
        "details": details,
    }
    return hashlib.sha256(canonical_json(record).encode("utf-8")).hexdigest()
