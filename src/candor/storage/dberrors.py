"""Turning database exceptions into :class:`CandorError`: one line, no SQL, no parameters, no password.

A uniqueness violation (UNIQUE or PRIMARY KEY) becomes ``ErrorKind.CONFLICT`` naming what was duplicated;
any other refused write (foreign key, CHECK, NOT NULL) is a programming error, ``ErrorKind.INTERNAL``; a
database that cannot be reached or used is ``ErrorKind.STORAGE``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from sqlalchemy import PrimaryKeyConstraint, UniqueConstraint
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from candor.errors import CandorError, ErrorKind
from candor.storage.models import Base

_SQLITE_UNIQUE = re.compile(r"^UNIQUE constraint failed: (?P<cols>[\w.]+(?:, [\w.]+)*)")

# What each uniqueness constraint protects, for the operator-facing message.
DUPLICATES: dict[str, str] = {
    "uq_keys_label": "a key with this label",
    "uq_keys_spki_sha256": "a key with this public key",
    "uq_issuers_name": "an issuer with this name",
    "uq_issuers_fingerprint_sha256": "an issuer with this certificate",
    "uq_serials_issuer_serial": "this serial number under this issuer",
    "uq_certificates_serial_kind": "a certificate of this kind for this serial",
    "uq_certificates_fingerprint_sha256": "this certificate",
    "pk_audit_events": "an audit event with this sequence number",
    "uq_audit_events_prev_hash": "an audit event chained onto the same previous event",
    "uq_audit_events_hash": "an audit event with this hash",
}


def one_line(text: str, *, secret: str | None = None, limit: int = 300) -> str:
    """Collapse *text* to one line, drop *secret* if it appears, and cut it to *limit* characters."""
    if secret:
        text = text.replace(secret, "***")
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _constraint_for_columns(table: str, columns: list[str]) -> str | None:
    found = Base.metadata.tables.get(table)
    if found is None:
        return None
    for constraint in found.constraints:
        if (
            isinstance(constraint, UniqueConstraint | PrimaryKeyConstraint)
            and [c.name for c in constraint.columns] == columns
            and isinstance(constraint.name, str)
        ):
            return constraint.name
    return None


def unique_violation(exc: IntegrityError) -> str | None:
    """The name of the UNIQUE/PRIMARY KEY constraint *exc* reports, "" if unnamed, None if not one."""
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:  # psycopg
        if sqlstate != "23505":
            return None
        diag = getattr(orig, "diag", None)
        name = getattr(diag, "constraint_name", None)
        return name if isinstance(name, str) else ""
    match = _SQLITE_UNIQUE.match(str(orig))
    if match is None:
        return None
    qualified = match.group("cols").split(", ")
    table = qualified[0].split(".")[0]
    columns = [q.split(".", 1)[-1] for q in qualified]
    return _constraint_for_columns(table, columns) or ""


def conflict_from(exc: IntegrityError, describe: Mapping[str, str] | None = None) -> CandorError:
    """A CONFLICT error for a uniqueness violation, else an INTERNAL one naming the refused constraint.

    *describe* maps constraint names to a message for this call site (e.g. naming the duplicated label);
    otherwise :data:`DUPLICATES` describes it.
    """
    name = unique_violation(exc)
    if name is None:
        return CandorError(ErrorKind.INTERNAL, "database refused the write: " + one_line(str(exc.orig)))
    described = (describe or {}).get(name) or DUPLICATES.get(name) or "a row with these values"
    return CandorError(ErrorKind.CONFLICT, f"{described} already exists ({name or 'unique constraint'})")


def insert_unique(session: Session, row: object, describe: Mapping[str, str] | None = None) -> None:
    """Add and flush *row* inside a SAVEPOINT; a uniqueness violation raises CONFLICT.

    The savepoint keeps the caller's transaction usable after a conflict, so it can, for example, retry
    with another serial number.
    """
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:
        raise conflict_from(exc, describe) from None


def storage_error(exc: DBAPIError, where: str, *, secret: str | None = None) -> CandorError:
    """A STORAGE error for a database that cannot be reached or used."""
    orig = exc.orig if exc.orig is not None else exc
    detail = one_line(f"{type(orig).__name__}: {orig}", secret=secret)
    return CandorError(ErrorKind.STORAGE, f"database {where}: {detail}")


@contextmanager
def translated(where: str, *, secret: str | None = None) -> Iterator[None]:
    """Re-raise database exceptions escaping the block as :class:`CandorError`."""
    try:
        yield
    except IntegrityError as exc:
        raise conflict_from(exc) from None
    except DBAPIError as exc:
        raise storage_error(exc, where, secret=secret) from None
