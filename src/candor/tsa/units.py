"""TSA units: which key signs now, and the checks a unit passes before it signs anything.

A unit is a time-stamping key with its Timestamp certificate (:mod:`candor.profiles.tsa`). The unit that signs
at a moment is the active unit with the latest ``signs_from`` whose period (``signs_from`` to ``usable_until``,
which is at most 15 months after its certificate's notBefore, CSBR 6.3.2) contains the moment. A certificate's
notBefore is the time it was signed, never a later one (WS-08a: no forward-dating), so a unit certified ahead
of a rotation carries the moment it takes over in ``signs_from`` and takes over then with no restart; its
predecessor's certificate stays published for verifiers. No unit in its usage period means no token
(systemFailure), never a token from an expired key.

A serving process loads the units from the database and their keys through a *key loader* (the CLI's key
stores: this package never imports ``candor.keys``). A unit whose certificate is not a compliant Timestamp
certificate, or whose key is not the one certified, is refused: at start-up the service does not start.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select
from sqlalchemy.orm import Session

from candor.errors import CandorError, ErrorKind
from candor.policy.algorithms import CAPrivateKey
from candor.profiles import timestamp_certificate_problems
from candor.profiles.tsa import usable_until
from candor.storage.models import Issuer
from candor.storage.models_tsa import TsaUnit
from candor.tsa.token import TokenOptions, TokenSigner

KeyLoader = Callable[[str, str, str], CAPrivateKey]  # (store, handle, algorithm) -> the private key


@dataclass(frozen=True)
class UnitRecord:
    """What the database says about a unit (no key)."""

    id: int
    name: str
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # its issuer and their issuers, up to but excluding the root
    key_store: str
    key_handle: str
    key_algorithm: str
    key_backend: str
    not_before: datetime
    signs_from: datetime  # when the service switches to it (not before its certificate's notBefore)
    usable_until: datetime
    not_after: datetime
    status: str

    def usable_at(self, moment: datetime) -> bool:
        return self.status == "active" and self.signs_from <= moment < self.usable_until


def issuer_chain(issuer: Issuer) -> tuple[x509.Certificate, ...]:
    chain: list[x509.Certificate] = []
    current: Issuer | None = issuer
    while current is not None and current.kind != "root":
        chain.append(x509.load_der_x509_certificate(current.certificate_der))
        current = current.parent
    return tuple(chain)


def load_unit_records(session: Session, *, since_id: int = 0) -> list[UnitRecord]:
    """Every unit (active or retired) with an id above *since_id*, oldest first."""
    records = []
    for unit in session.scalars(select(TsaUnit).where(TsaUnit.id > since_id).order_by(TsaUnit.id)):
        records.append(
            UnitRecord(
                id=unit.id,
                name=unit.name,
                certificate=x509.load_der_x509_certificate(unit.certificate.der),
                chain=issuer_chain(unit.issuer),
                key_store=unit.key.store,
                key_handle=unit.key.handle,
                key_algorithm=unit.key.algorithm,
                key_backend=unit.key.backend,
                not_before=unit.not_before,
                signs_from=unit.signs_from,
                usable_until=unit.usable_until,
                not_after=unit.not_after,
                status=unit.status,
            )
        )
    return records


def unit_statuses(session: Session) -> dict[int, str]:
    return {unit_id: status for unit_id, status in session.execute(select(TsaUnit.id, TsaUnit.status))}


@dataclass(frozen=True)
class Unit:
    """A unit ready to sign: its record and its token signer. *blocking*: the key is on a token (PKCS#11), whose
    signatures take long enough to be made off the event loop."""

    record: UnitRecord
    signer: TokenSigner
    blocking: bool


def prepare_unit(record: UnitRecord, load_key: KeyLoader, options: TokenOptions) -> Unit:
    """The unit ready to sign, or ``ErrorKind.POLICY``/``KEY`` naming why it may not."""
    problems = timestamp_certificate_problems(record.certificate)
    if problems:
        raise CandorError(
            ErrorKind.POLICY,
            f"TSA unit {record.name}: not a compliant Timestamp certificate: {'; '.join(problems)}",
        )
    # CSBR 6.3.2 from the certificate itself, not only from the row: the key signs at most 15 months after notBefore
    certified = record.certificate.not_valid_before_utc
    if record.usable_until > usable_until(certified, record.certificate.not_valid_after_utc) or (
        record.signs_from < certified
    ):
        raise CandorError(
            ErrorKind.POLICY,
            f"TSA unit {record.name}: its recorded usage period is not within 15 months of its certificate's "
            "notBefore (CSBR 6.3.2)",
        )
    if record.chain:
        issuer = record.chain[0]
        try:
            record.certificate.verify_directly_issued_by(issuer)
        except (InvalidSignature, ValueError, TypeError):
            raise CandorError(
                ErrorKind.POLICY, f"TSA unit {record.name}: its certificate is not signed by its issuer"
            ) from None
    key = load_key(record.key_store, record.key_handle, record.key_algorithm)
    if _spki(key.public_key()) != _spki(record.certificate.public_key()):
        raise CandorError(ErrorKind.KEY, f"TSA unit {record.name}: the key store's key is not the certified key")
    return Unit(record, TokenSigner(record.certificate, record.chain, key, options), record.key_backend == "pkcs11")


def _spki(public_key: object) -> bytes:
    return public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined,no-any-return]


@dataclass
class UnitSet:
    """The units of this process, and the one that signs now (re-chosen only when a usage period starts or ends)."""

    units: list[Unit] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # (the unit, from, until): the choice holds for moments in [from, until). One tuple, replaced whole, so that
    # the request path reads it without the lock.
    _choice: tuple[Unit | None, datetime, datetime] | None = field(default=None, repr=False)

    def add(self, units: Iterable[Unit]) -> None:
        with self._lock:
            self.units = sorted([*self.units, *units], key=lambda u: (u.record.signs_from, u.record.id))
            self._choice = None

    def set_status(self, statuses: dict[int, str]) -> None:
        """Apply status changes read from the database (a unit retired by an operator stops signing)."""
        with self._lock:
            changed = [u for u in self.units if statuses.get(u.record.id, u.record.status) != u.record.status]
            if not changed:
                return
            self.units = [
                Unit(replace(u.record, status=statuses[u.record.id]), u.signer, u.blocking) if u in changed else u
                for u in self.units
            ]
            self._choice = None

    def current(self, moment: datetime) -> Unit | None:
        """The unit that signs at *moment*, or None when no unit is in its usage period."""
        choice = self._choice
        if choice is not None and choice[1] <= moment < choice[2]:
            return choice[0]
        with self._lock:
            return self._choose(moment)

    def _choose(self, moment: datetime) -> Unit | None:
        usable = [u for u in self.units if u.record.usable_at(moment)]
        chosen = usable[-1] if usable else None  # the latest signs_from among those in their period
        starts = [u.record.signs_from for u in self.units if u.record.status == "active"]
        later = starts[bisect.bisect_right(starts, moment) :]
        # until the next unit starts or this one's period ends; with nothing ahead, until a change (add, set_status)
        ends = [*later[:1], *([chosen.record.usable_until] if chosen else [])]
        self._choice = (chosen, moment, min(ends, default=datetime.max.replace(tzinfo=moment.tzinfo)))
        return chosen

    def successor(self, unit: Unit) -> Unit | None:
        """An active unit that takes over from *unit* (a later signs_from, usable beyond *unit*'s period)."""
        for other in self.units:
            if (
                other.record.status == "active"
                and other.record.signs_from > unit.record.signs_from
                and other.record.usable_until > unit.record.usable_until
            ):
                return other
        return None
