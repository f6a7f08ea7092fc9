"""The browsers' CT log list (Chrome's and Apple's ``log_list.json``, schema v3), and which logs may be used.

Accepted shape (Chrome ``log_list_schema.json`` v3; Apple publishes the same format)::

    {"operators": [{"name": "...", "email": ["..."],
                    "logs": [{"description", "log_id", "key", "url", "mmd", "state", "temporal_interval"}],
                    "tiled_logs": [{"description", "log_id", "key", "submission_url", "monitoring_url", "mmd",
                                    "state", "temporal_interval"}]}]}

``logs`` are RFC 6962 logs (submissions at ``<url>ct/v1/``); ``tiled_logs`` are static-ct-api logs
(submissions at ``<submission_url>ct/v1/``, the same RFC 6962 4.1/4.2 write API). ``state`` has exactly one
of usable, qualified, readonly, retired, pending, rejected, each with a ``timestamp``. Fields this module does
not use (``version``, ``log_type``, ``previous_operators``, ``final_tree_head``...) are ignored, so newer lists
still load; a list whose fields Candor does use are missing or wrong is refused as a whole (CONFIG), never
half-read.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from candor.errors import CandorError, ErrorKind

MIN_RSA_BITS = (
    2048  # RFC 6962 2.1.4: "RSA signatures (RSASSA-PKCS1-V1_5 with SHA-256) using a key of at least 2048 bits"
)


class LogState(enum.StrEnum):
    """Chrome log policy, "Log States"."""

    PENDING = "pending"
    QUALIFIED = "qualified"
    USABLE = "usable"
    READONLY = "readonly"
    RETIRED = "retired"
    REJECTED = "rejected"


class LogKind(enum.StrEnum):
    RFC6962 = "rfc6962"
    STATIC_CT_API = "static-ct-api"


SUBMITTABLE = frozenset({LogState.USABLE, LogState.QUALIFIED})  # Chrome: only these accept new SCT-bearing certs


@dataclass(frozen=True)
class LogInfo:
    """One log of the list, its key parsed and its log ID checked (RFC 6962 3.2: SHA-256 of the SPKI)."""

    operator: str
    description: str
    log_id: bytes
    key_der: bytes  # SubjectPublicKeyInfo
    submission_url: str  # ends with "/"; add-chain is at submission_url + "ct/v1/add-chain"
    mmd_seconds: int
    state: LogState
    state_since: datetime
    kind: LogKind
    start_inclusive: datetime | None = None
    end_exclusive: datetime | None = None
    monitoring_url: str | None = None  # static-ct-api logs: the tiles' prefix

    @property
    def name(self) -> str:
        return self.description

    def accepts_expiry(self, not_after: datetime) -> bool:
        """Chrome log policy, temporal sharding: the log takes certificates whose notAfter is in
        [start_inclusive, end_exclusive)."""
        if self.start_inclusive is not None and not_after < self.start_inclusive:
            return False
        return self.end_exclusive is None or not_after < self.end_exclusive

    def endpoint(self, name: str) -> str:
        return f"{self.submission_url}ct/v1/{name}"


@dataclass(frozen=True)
class LogList:
    logs: tuple[LogInfo, ...]

    def by_id(self, log_id: bytes) -> LogInfo | None:
        return next((log for log in self.logs if log.log_id == log_id), None)

    def usable_for(self, not_after: datetime) -> tuple[LogInfo, ...]:
        """The logs a certificate expiring at *not_after* may be submitted to: usable or qualified, temporal
        interval containing notAfter (Chrome CT policy; Apple's list has the same states and intervals)."""
        return tuple(log for log in self.logs if log.state in SUBMITTABLE and log.accepts_expiry(not_after))


def load_log_list(path: Path) -> LogList:
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise CandorError(ErrorKind.CONFIG, f"CT log list {path}: cannot be read ({exc.strerror})") from None
    return parse_log_list(text, source=str(path))


def parse_log_list(data: bytes | str, *, source: str = "CT log list") -> LogList:
    """Parse and check a v3 log list; raise CandorError(CONFIG) naming the first problem."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CandorError(ErrorKind.CONFIG, f"{source}: not JSON ({exc})") from None
    try:
        logs = _parse(document)
    except _Bad as exc:
        raise CandorError(ErrorKind.CONFIG, f"{source}: {exc}") from None
    seen: set[bytes] = set()
    for log in logs:
        if log.log_id in seen:
            raise CandorError(ErrorKind.CONFIG, f"{source}: log ID {_b64(log.log_id)} is listed twice")
        seen.add(log.log_id)
    return LogList(tuple(logs))


class _Bad(ValueError):
    pass


def _parse(document: object) -> list[LogInfo]:
    operators = _field(document, "operators", list, "the list")
    logs: list[LogInfo] = []
    for index, operator in enumerate(operators):
        name = _field(operator, "name", str, f"operators[{index}]")
        if not name.strip():
            raise _Bad(f"operators[{index}].name is empty")
        emails = _field(operator, "email", list, f"operator {name!r}")
        if not all(isinstance(e, str) for e in emails):
            raise _Bad(f"operator {name!r}: email is a list of strings")
        for kind, key in ((LogKind.RFC6962, "logs"), (LogKind.STATIC_CT_API, "tiled_logs")):
            entries = operator.get(key, [])
            if not isinstance(entries, list):
                raise _Bad(f"operator {name!r}: {key} is not a list")
            logs += [_log(name, kind, entry, f"operator {name!r} {key}[{i}]") for i, entry in enumerate(entries)]
    return logs


def _log(operator: str, kind: LogKind, entry: object, where: str) -> LogInfo:
    description = _field(entry, "description", str, where)
    where = f"log {description!r} ({operator})"
    key_der = _base64(_field(entry, "key", str, where), f"{where}: key")
    log_id = _base64(_field(entry, "log_id", str, where), f"{where}: log_id")
    if log_id != hashlib.sha256(key_der).digest():
        raise _Bad(f"{where}: log_id is not the base64 SHA-256 of its key (RFC 6962 3.2)")
    _check_key(key_der, where)
    url_field = "url" if kind is LogKind.RFC6962 else "submission_url"
    url = _field(entry, url_field, str, where)
    if not url.startswith(("https://", "http://")):
        raise _Bad(f"{where}: {url_field} must be an http(s) URL")
    monitoring = _field(entry, "monitoring_url", str, where) if kind is LogKind.STATIC_CT_API else None
    mmd = _field(entry, "mmd", int, where)
    if isinstance(mmd, bool) or mmd <= 0:
        raise _Bad(f"{where}: mmd must be a positive number of seconds")
    state, since = _state(_field(entry, "state", dict, where), where)
    start = end = None
    interval = entry.get("temporal_interval")  # type: ignore[attr-defined]
    if interval is not None:
        start = _time(_field(interval, "start_inclusive", str, f"{where} temporal_interval"), where)
        end = _time(_field(interval, "end_exclusive", str, f"{where} temporal_interval"), where)
        if end <= start:
            raise _Bad(f"{where}: temporal_interval ends before it starts")
    return LogInfo(
        operator=operator,
        description=description,
        log_id=log_id,
        key_der=key_der,
        submission_url=url if url.endswith("/") else url + "/",
        mmd_seconds=mmd,
        state=state,
        state_since=since,
        kind=kind,
        start_inclusive=start,
        end_exclusive=end,
        monitoring_url=monitoring,
    )


def _state(value: dict[str, Any], where: str) -> tuple[LogState, datetime]:
    if len(value) != 1:
        raise _Bad(f"{where}: state must have exactly one of {', '.join(s.value for s in LogState)}")
    ((name, body),) = value.items()
    try:
        state = LogState(name)
    except ValueError:
        raise _Bad(f"{where}: unknown state {name!r} (one of {', '.join(s.value for s in LogState)})") from None
    return state, _time(_field(body, "timestamp", str, f"{where} state"), where)


def _check_key(key_der: bytes, where: str) -> None:
    """RFC 6962 2.1.4: ECDSA on NIST P-256, or RSA of at least 2048 bits."""
    try:
        key = load_der_public_key(key_der)
    except ValueError:
        raise _Bad(f"{where}: key is not a DER SubjectPublicKeyInfo") from None
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= MIN_RSA_BITS:
        return
    raise _Bad(f"{where}: key must be ECDSA P-256 or RSA of at least {MIN_RSA_BITS} bits (RFC 6962 2.1.4)")


def _field(holder: object, name: str, kind: type, where: str) -> Any:
    if not isinstance(holder, Mapping):
        raise _Bad(f"{where} is not a JSON object")
    if name not in holder:
        raise _Bad(f"{where} has no {name!r}")
    value = holder[name]
    if not isinstance(value, kind):
        raise _Bad(f"{where}: {name!r} is not a {kind.__name__}")
    return value


def _base64(value: str, where: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _Bad(f"{where} is not valid base64") from None


def _time(value: str, where: str) -> datetime:
    """RFC 3339 times as the lists write them (``2025-01-01T00:00:00Z``), always with an offset."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _Bad(f"{where}: {value!r} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise _Bad(f"{where}: {value!r} has no time zone")
    return moment.astimezone(UTC)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def log_list_document(operators: Sequence[tuple[str, str, Sequence[LogInfo]]]) -> dict[str, object]:
    """A v3 log list for *operators* ((name, email, logs)): what ``candor serve`` publishes for its own logs,
    and what certspotter's ``-logs`` reads."""
    out: list[dict[str, object]] = []
    for name, email, logs in operators:
        entry: dict[str, object] = {"name": name, "email": [email], "logs": [], "tiled_logs": []}
        for log in logs:
            item: dict[str, object] = {
                "description": log.description,
                "log_id": _b64(log.log_id),
                "key": _b64(log.key_der),
                "mmd": log.mmd_seconds,
                "state": {log.state.value: {"timestamp": _rfc3339(log.state_since)}},
            }
            if log.start_inclusive is not None and log.end_exclusive is not None:
                item["temporal_interval"] = {
                    "start_inclusive": _rfc3339(log.start_inclusive),
                    "end_exclusive": _rfc3339(log.end_exclusive),
                }
            if log.kind is LogKind.RFC6962:
                item["url"] = log.submission_url
                entry["logs"].append(item)  # type: ignore[attr-defined]
            else:
                item["submission_url"] = log.submission_url
                item["monitoring_url"] = log.monitoring_url or log.submission_url
                entry["tiled_logs"].append(item)  # type: ignore[attr-defined]
        out.append(entry)
    return {"version": "1.0", "operators": out}


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = ["LogInfo", "LogKind", "LogList", "LogState", "load_log_list", "log_list_document", "parse_log_list"]
