"""The CRL state in the database: the per-issuer counter, the shard rows, and the revoked serials of a shard.

The CRLNumber is drawn in a transaction of its own (``UPDATE ... SET last_number = last_number + 1 RETURNING``),
so two generators racing, threads or processes, on SQLite or PostgreSQL, get distinct numbers in the order the
database serialised them, and a restart continues from the stored value (RFC 5280 5.2.3, BR 7.2.1: strictly
increasing). Publication then updates the shard row only if its CRL is newer than the one served
(``WHERE number < :n``), holding that row until the file is in place: what is served never goes backwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import String, func, or_, select, type_coerce, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from candor.errors import CandorError, ErrorKind
from candor.revocation.crl import der
from candor.revocation.crl.build import Entry
from candor.revocation.crl.shards import hex_suffixes
from candor.storage.models import SerialRecord
from candor.storage.models_crl import CrlIssuerState, CrlShard


def ensure_issuer(session: Session, *, issuer_id: int, shards: int, now: datetime) -> None:
    """Create the issuer's counter and shard rows if missing (concurrent creators are harmless), and refuse a
    shard count that differs from the one its first CRLs were published with."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(CrlIssuerState)
        .values(issuer_id=issuer_id, shards=shards, last_number=0, created_at=now)
        .on_conflict_do_nothing(index_elements=["issuer_id"])
    )
    recorded = session.scalar(select(CrlIssuerState.shards).where(CrlIssuerState.issuer_id == issuer_id))
    if recorded != shards:
        raise CandorError(
            ErrorKind.CONFIG,
            f"issuer {issuer_id}: its certificates name {recorded} CRL shards, not {shards}: the count is fixed",
        )
    session.execute(
        insert(CrlShard)
        .values([{"issuer_id": issuer_id, "shard": shard, "revision": 0} for shard in range(shards)])
        .on_conflict_do_nothing(index_elements=["issuer_id", "shard"])
    )


def draw_number(session: Session, issuer_id: int) -> int:
    """The next CRLNumber of the issuer (commit the session at once: the row stays locked until then)."""
    number = session.scalar(
        update(CrlIssuerState)
        .where(CrlIssuerState.issuer_id == issuer_id)
        .values(last_number=CrlIssuerState.last_number + 1)
        .returning(CrlIssuerState.last_number)
    )
    if number is None:
        raise CandorError(ErrorKind.INTERNAL, f"issuer {issuer_id} has no CRL counter")
    return int(number)


def revision(session: Session, issuer_id: int, shard: int) -> int:
    value = session.scalar(select(CrlShard.revision).where(CrlShard.issuer_id == issuer_id, CrlShard.shard == shard))
    return int(value or 0)


def shard_rows(session: Session, issuer_id: int) -> list[CrlShard]:
    return list(session.scalars(select(CrlShard).where(CrlShard.issuer_id == issuer_id).order_by(CrlShard.shard)))


def revoked_entries(
    session: Session, *, issuer_id: int, shard: int, shards: int, expired_before: datetime
) -> list[Entry]:
    """Every revoked serial of the shard whose certificate expired no earlier than *expired_before*
    (BR 4.10.1: entries stay at least until one CRL after expiry), precertificate-only serials included
    (BR 7.1.2.9), sorted by serial. Read with Core; on SQLite the timestamp text is encoded directly."""
    return revoked_entries_of(
        session, issuer_id=issuer_id, wanted=[shard], shards=shards, expired_before=expired_before
    )[shard]


def revoked_entries_of(
    session: Session, *, issuer_id: int, wanted: Sequence[int], shards: int, expired_before: datetime
) -> dict[int, list[Entry]]:
    """:func:`revoked_entries` of each shard in *wanted*, read in one pass over the issuer's revoked serials
    (a shard's own read selects its serials by the end of ``serial_hex``, which no index serves: each read passes
    over all of them, so regenerating 16 shards one by one passed over them 16 times)."""
    when = SerialRecord.__table__.c.revoked_at
    revoked_at = type_coerce(when, String) if session.get_bind().dialect.name == "sqlite" else when
    query = select(SerialRecord.serial_hex, revoked_at, SerialRecord.revocation_reason).where(
        SerialRecord.issuer_id == issuer_id,
        SerialRecord.status == "revoked",
        or_(SerialRecord.expires_at.is_(None), SerialRecord.expires_at >= expired_before),
    )
    found: dict[int, list[Entry]] = {shard: [] for shard in wanted}
    selected = _endings(list(found), shards)
    if selected is not None:
        width, endings = selected
        ending = func.substr(SerialRecord.serial_hex, func.length(SerialRecord.serial_hex) - (width - 1), width)
        query = query.where(ending.in_(endings))
    # Core rows on the session's connection (an ORM session.execute would run them through its loading)
    rows: Iterable[tuple[str, object, int | None]] = session.connection().execute(query)
    time_der = der.time_der
    times: dict[object, bytes] = {}
    for serial_hex, at, reason in rows:
        octets = bytes.fromhex(serial_hex)
        entries = found.get(int.from_bytes(octets, "big") % shards) if shards > 1 else found.get(0)
        if entries is None:
            continue
        encoded = times.get(at)
        if encoded is None:
            encoded = times[at] = time_der(at)  # type: ignore[arg-type]
        entries.append(Entry(octets, encoded, reason or 0))
    for entries in found.values():
        entries.sort(key=lambda e: (len(e.serial), e.serial))
    return found


def _endings(wanted: list[int], shards: int) -> tuple[int, list[str]] | None:
    """The ``serial_hex`` endings that select the serials of *wanted* shards in the database (:func:`hex_suffixes`),
    or None to read every shard's (all of them are wanted, or the count does not divide 256 or 65,536)."""
    if shards == 1 or len(wanted) == shards:
        return None
    width, endings = 0, set[str]()
    for shard in wanted:
        suffixes = hex_suffixes(shard, shards)
        if suffixes is None:
            return None
        width, endings = suffixes[0], endings | suffixes[1]
    return width, sorted(endings)


def claim_publication(
    session: Session,
    *,
    issuer_id: int,
    shard: int,
    number: int,
    published_revision: int,
    this_update: datetime,
    next_update: datetime,
    entries: int,
    sha256: str,
    now: datetime,
) -> bool:
    """Record the CRL as the shard's served one, unless a CRL with a higher number already is (False). The row
    stays locked until the session ends: write the file before committing."""
    result = session.execute(
        update(CrlShard)
        .where(
            CrlShard.issuer_id == issuer_id,
            CrlShard.shard == shard,
            or_(CrlShard.number.is_(None), CrlShard.number < number),
        )
        .values(
            number=number,
            published_revision=published_revision,
            this_update=this_update,
            next_update=next_update,
            entries=entries,
            sha256=sha256,
            published_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
