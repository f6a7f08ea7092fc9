"""External account binding keys (RFC 8555 7.3.4): how a CA ties a new ACME account to a customer it knows.

The operator creates a key identifier (``candor acme eab create``) and hands the customer the kid and its MAC
key. The MAC key is derived from the operator's EAB secret (a file or environment variable, never the
database) and the kid, so the database holds no secret: a copy of it cannot bind an account.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from candor.errors import CandorError, ErrorKind
from candor.storage.models_acme import ExternalAccountKey

_LABEL = b"candor acme eab mac key v1\x00"
MIN_SECRET_CHARS = 32


def mac_key(secret: str, kid: str) -> bytes:
    """The HS256 MAC key of *kid*: HMAC-SHA-256 under the operator's secret (a PRF, as in RFC 5869 2.3)."""
    if len(secret) < MIN_SECRET_CHARS:
        raise CandorError(ErrorKind.CONFIG, f"the ACME EAB secret must be at least {MIN_SECRET_CHARS} characters")
    return hmac.new(secret.encode("utf-8"), _LABEL + kid.encode("utf-8"), hashlib.sha256).digest()


def encode_mac_key(key: bytes) -> str:
    """The form ACME clients take the key in (certbot --eab-hmac-key, lego --hmac): unpadded base64url."""
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode("ascii")


def create_key(session: Session, *, label: str, now: datetime) -> ExternalAccountKey:
    if not label or len(label) > 128:
        raise CandorError(ErrorKind.MALFORMED, "an EAB key label is 1-128 characters")
    record = ExternalAccountKey(kid="kid-" + secrets.token_urlsafe(18), label=label, status="active", created_at=now)
    session.add(record)
    session.flush()
    return record


def key_by_kid(session: Session, kid: str) -> ExternalAccountKey | None:
    return session.scalars(select(ExternalAccountKey).where(ExternalAccountKey.kid == kid)).one_or_none()


def list_keys(session: Session) -> list[ExternalAccountKey]:
    return list(session.scalars(select(ExternalAccountKey).order_by(ExternalAccountKey.id)))


def revoke_key(session: Session, kid: str) -> ExternalAccountKey:
    """Refuse the kid for any future binding (an account already bound keeps working: deactivate it instead)."""
    record = key_by_kid(session, kid)
    if record is None:
        raise CandorError(ErrorKind.NOT_FOUND, f"no EAB key {kid!r}")
    record.status = "revoked"
    session.flush()
    return record
