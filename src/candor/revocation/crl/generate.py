"""Generating, checking and publishing an issuer's shard CRLs (BR 4.9.7, 7.2).

For one shard: read the shard's revision, draw the CRLNumber (its own transaction), read the revoked serials,
build the TBSCertList in one pass, run the checks that do not need a signature (every entry; pkilint on the
draft signed by a throwaway key, or on a same-header sample when large), record the intent in the audit log,
sign with the issuer's key through the key stores, check the signed CRL, and publish it (file and shard row,
with the ``crl.publish`` audit event) unless a newer CRL was published meanwhile. Any failed check publishes
nothing and records ``crl.refused``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from candor.audit import AuditLog
from candor.clock import Clock
from candor.errors import CandorError, ErrorKind
from candor.files import write_atomically
from candor.issuance import IssuerResolver
from candor.issuance.issuers import IssuerContext
from candor.revocation.crl import build, checks, der, files, state
from candor.revocation.crl.shards import CRL_KINDS, shard_count, shard_url, shard_urls
from candor.storage import Database
from candor.storage.models import Issuer
from candor.timekeeping import ClockWatch, TrustedClock, require_trustworthy

log = logging.getLogger(__name__)
# CSBR (TSA-07 in ../shared/reference/br-requirements-and-incidents.md): a revoked Timestamp certificate stays on the
# CRL at least 10 years after it expires; 3,653 days covers the leap days of any 10 years.
TSA_KEEP_AFTER_EXPIRY = timedelta(days=3653)


@dataclass(frozen=True)
class CrlSettings:
    """How CRLs are made and how often. *base_url* must be the signer's (``server.public_base_url``)."""

    base_url: str
    validity: timedelta = timedelta(days=7)  # nextUpdate - thisUpdate; BR 4.9.7 allows at most 10 days
    regenerate_every: timedelta = timedelta(hours=6)  # every shard, revoked or not (Boulder's UpdatePeriod)
    dirty_within: timedelta = timedelta(minutes=1)  # how often the loop looks for shards with new revocations
    # Entries stay this long after their certificate expires, longer than one regeneration period, so that
    # at least one regular CRL lists them after expiry (BR 4.10.1; Boulder's LookbackPeriod).
    keep_after_expiry: timedelta = timedelta(days=1)

    def __post_init__(self) -> None:
        if not timedelta(0) < self.validity <= build.MAX_VALIDITY:
            raise CandorError(ErrorKind.CONFIG, "BR 4.9.7: a CRL's validity is at most 10 days")
        if not timedelta(0) < self.regenerate_every < self.validity:
            raise CandorError(ErrorKind.CONFIG, "CRLs must be regenerated well before their nextUpdate")
        if self.keep_after_expiry <= self.regenerate_every:
            raise CandorError(ErrorKind.CONFIG, "BR 4.10.1: keep expired entries longer than one regeneration")
        if not timedelta(0) < self.dirty_within <= timedelta(hours=1):
            raise CandorError(ErrorKind.CONFIG, "the dirty-shard check runs at least hourly (BR 4.9.7: 24 h)")

    def keep_after_expiry_for(self, kind: str) -> timedelta:
        """How long an expired certificate's entry stays: one regeneration and more for TLS (BR 4.10.1), at least 10
        years for a time-stamping CA's Timestamp certificates (CSBR)."""
        return max(self.keep_after_expiry, TSA_KEEP_AFTER_EXPIRY) if kind == "tsa" else self.keep_after_expiry


@dataclass(frozen=True)
class ShardResult:
    issuer: str
    shard: int
    number: int
    entries: int
    linted: int  # entries pkilint read (all of them, or the sample)
    seconds: float
    published: bool  # False: a CRL with a higher number was published meanwhile, this one was discarded
    path: Path


Progress = Callable[[ShardResult], None]


@dataclass(frozen=True)
class _Read:
    """A shard's revision and revoked entries, read by :meth:`CrlGenerator.generate_shards` for it."""

    revision: int
    entries: list[build.Entry]


class CrlGenerator:
    def __init__(
        self,
        *,
        db: Database,
        issuers: IssuerResolver,
        clock: Clock,
        public_dir: Path,
        settings: CrlSettings,
        actor: str,
        progress: Progress | None = None,
        clock_watch: ClockWatch | None = None,
    ) -> None:
        self.db = db
        self.clock_watch = clock_watch if clock_watch is not None else TrustedClock()
        self.issuers = issuers
        self.clock = clock
        self.public_dir = public_dir
        self.settings = settings
        self.actor = actor
        self.audit = AuditLog(clock)
        self.progress = progress
        self._kinds: dict[int, str] = {}

    def crl_issuers(self) -> list[int]:
        """Issuers that publish CRLs: TLS issuing CAs and time-stamping CAs whose certificates' entries may still
        have to be listed (the CA expired less than the kind's retention ago)."""
        now = self.clock.now()
        listed = [
            and_(Issuer.kind == kind, Issuer.not_after >= now - self.settings.keep_after_expiry_for(kind))
            for kind in CRL_KINDS
        ]
        with self.db.session() as session:
            return list(session.scalars(select(Issuer.id).where(or_(*listed)).order_by(Issuer.id)))

    def issuer_id(self, name: str) -> int:
        with self.db.session() as session:
            found = session.scalar(select(Issuer.id).where(Issuer.name == name, Issuer.kind.in_(CRL_KINDS)))
        if found is None:
            raise CandorError(ErrorKind.NOT_FOUND, f"no TLS issuing CA or time-stamping CA named {name!r}")
        return found

    def prepare(self, issuer_id: int) -> IssuerContext:
        """The issuer's context, with its counter and shard rows in place and the CCADB JSON written. Its
        ``crl_shards`` is the number of CRLs it publishes (one for a time-stamping CA: :func:`shard_count`)."""
        with self.db.session() as session:
            issuer = self._shards(session, self.issuers.by_id(session, issuer_id))
            state.ensure_issuer(session, issuer_id=issuer_id, shards=issuer.crl_shards, now=self.clock.now())
        urls = shard_urls(self.settings.base_url, issuer.name, issuer.crl_shards)
        files.write_ccadb(self.public_dir, issuer.name, urls)
        return issuer

    def generate_all(self, issuer_id: int) -> list[ShardResult]:
        """Regenerate every shard of the issuer (the periodic run, BR 4.9.7)."""
        issuer = self.prepare(issuer_id)
        results = []
        for _, outcome in self.generate_shards(issuer, range(issuer.crl_shards)):
            if isinstance(outcome, CandorError):
                raise outcome
            results.append(outcome)
        return results

    def generate_shards(
        self, issuer: IssuerContext, shards: Iterable[int]
    ) -> Iterator[tuple[int, ShardResult | CandorError]]:
        """:meth:`generate_shard` for each of *shards*, their entries read in one pass over the issuer's revoked
        serials (:func:`state.revoked_entries_of`) when there are several; each shard's revision is read before
        that pass, as :meth:`generate_shard` reads it before its own read, so a revocation recorded after the
        pass leaves the shard dirty. Yields (shard, its result or the CandorError that refused it) as it goes."""
        wanted = list(shards)
        reads: dict[int, _Read] = {}
        if len(wanted) > 1:
            require_trustworthy(self.clock_watch, f"CRLs of {issuer.name}")
            with self.db.session() as session:
                revisions = {shard: state.revision(session, issuer.id, shard) for shard in wanted}
                kind = self._kind(session, issuer.id)
            with self.db.session() as session:
                entries = state.revoked_entries_of(
                    session, issuer_id=issuer.id, wanted=wanted, shards=issuer.crl_shards,
                    expired_before=self.clock.now() - self.settings.keep_after_expiry_for(kind),
                )  # fmt: skip
            reads = {shard: _Read(revisions[shard], entries[shard]) for shard in wanted}
        for shard in wanted:
            try:
                yield shard, self.generate_shard(issuer, shard, read=reads.pop(shard, None))
            except CandorError as exc:
                yield shard, exc

    def generate_shard(self, issuer: IssuerContext, shard: int, *, read: _Read | None = None) -> ShardResult:
        """Generate, check and publish one shard's CRL; with *read*, its revision and entries as
        :meth:`generate_shards` read them (entries that expired in between stay listed: one CRL longer)."""
        started = time.perf_counter()
        subject = f"{issuer.name}/{shard}"
        # thisUpdate comes from the clock: none is signed, and no CRLNumber drawn, while it is not trustworthy
        require_trustworthy(self.clock_watch, f"CRL {subject}")  # (WS-08e, CSBR 6.8)
        with self.db.session() as session:
            seen_revision = state.revision(session, issuer.id, shard) if read is None else read.revision
            kind = self._kind(session, issuer.id)
        with self.db.session() as session:
            number = state.draw_number(session, issuer.id)
        now = self.clock.now()
        this_update = now.replace(microsecond=0)
        header = build.CrlHeader(
            issuer=issuer.certificate,
            algorithm=issuer.algorithm,
            url=shard_url(self.settings.base_url, issuer.name, shard),
            number=number,
            this_update=this_update,
            next_update=this_update + self.settings.validity,
            kind=kind,
        )
        if read is not None:
            entries = read.entries
        else:
            with self.db.session() as session:
                entries = state.revoked_entries(
                    session,
                    issuer_id=issuer.id,
                    shard=shard,
                    shards=issuer.crl_shards,
                    expired_before=now - self.settings.keep_after_expiry_for(kind),
                )
        try:
            skeleton = build.skeleton(header)
            checks.check_entries(entries, shard=shard, shards=issuer.crl_shards, this_update=der.time_der(this_update))
            tbs = build.assemble(skeleton, entries)
            draft = build.throwaway_sign(skeleton, tbs, issuer.algorithm)
            checks.check_signed(draft, header, entries, signed_by_issuer=False)
            linted = checks.lint(skeleton, header, draft, entries)
        except CandorError as exc:
            self._refused(subject, number, exc)
            raise
        tbs_sha256 = hashlib.sha256(tbs).hexdigest()
        details = {"number": number, "entries": len(entries), "tbs_sha256": tbs_sha256, "url": header.url}
        with self.db.session() as session:
            self.audit.record(
                session, actor=self.actor, action="crl.intent", subject=subject, outcome="info", details=details
            )
        try:
            require_trustworthy(self.clock_watch, f"CRL {subject}")  # the clock may have failed since thisUpdate
            crl_der = build.sign(skeleton, tbs, issuer.key(), issuer.algorithm)
            checks.check_signed(crl_der, header, entries, checked_tbs=tbs)  # the draft's TBS passed them all
        except CandorError as exc:
            self._refused(subject, number, exc)
            raise
        published = self._publish(issuer, shard, header, crl_der, seen_revision, len(entries), details)
        result = ShardResult(
            issuer=issuer.name,
            shard=shard,
            number=number,
            entries=len(entries),
            linted=linted,
            seconds=time.perf_counter() - started,
            published=published,
            path=files.shard_path(self.public_dir, issuer.name, shard),
        )
        if self.progress is not None:
            self.progress(result)
        return result

    def _publish(
        self,
        issuer: IssuerContext,
        shard: int,
        header: build.CrlHeader,
        crl_der: bytes,
        seen_revision: int,
        count: int,
        details: dict[str, object],
    ) -> bool:
        sha256 = hashlib.sha256(crl_der).hexdigest()
        with self.db.session() as session:
            claimed = state.claim_publication(
                session,
                issuer_id=issuer.id,
                shard=shard,
                number=header.number,
                published_revision=seen_revision,
                this_update=header.this_update,
                next_update=header.next_update,
                entries=count,
                sha256=sha256,
                now=self.clock.now(),
            )
            self.audit.record(
                session,
                actor=self.actor,
                action="crl.publish" if claimed else "crl.superseded",
                subject=f"{issuer.name}/{shard}",
                outcome="success" if claimed else "info",
                details={**details, "sha256": sha256, "this_update": header.this_update.isoformat()},
            )
            if claimed:  # under the shard row's lock: no older CRL can replace this file meanwhile
                write_atomically(files.shard_path(self.public_dir, issuer.name, shard), crl_der)
        if not claimed:
            log.info("CRL %s/%d number %d discarded: a newer one is published", issuer.name, shard, header.number)
        return claimed

    def _refused(self, subject: str, number: int, exc: CandorError) -> None:
        log.error("CRL %s (number %d) refused: %s", subject, number, exc.message)
        with self.db.session() as session:
            self.audit.record(
                session,
                actor=self.actor,
                action="crl.refused",
                subject=subject,
                outcome="failure",
                details={"number": number, "error": exc.message[:500]},
            )

    def due(self, now: datetime) -> list[tuple[int, int]]:
        """(issuer id, shard) of every shard never published, dirty (a revocation since its CRL's entries were
        read), or due for its periodic regeneration."""
        wanted: list[tuple[int, int]] = []
        for issuer_id in self.crl_issuers():
            with self.db.session() as session:
                rows = {row.shard: row for row in state.shard_rows(session, issuer_id)}
                shards = self._shards(session, self.issuers.by_id(session, issuer_id)).crl_shards
            for shard in range(shards):
                row = rows.get(shard)
                if (
                    row is None
                    or row.number is None
                    or row.this_update is None
                    or row.published_revision is None
                    or row.revision > row.published_revision
                    or now >= row.this_update + self.settings.regenerate_every
                ):
                    wanted.append((issuer_id, shard))
        return wanted

    def _kind(self, session: Session, issuer_id: int) -> str:
        kind = self._kinds.get(issuer_id)
        if kind is None:
            kind = self._kinds[issuer_id] = str(session.scalar(select(Issuer.kind).where(Issuer.id == issuer_id)))
        return kind

    def _shards(self, session: Session, issuer: IssuerContext) -> IssuerContext:
        """*issuer* with ``crl_shards`` the number of CRLs it publishes (:func:`shard_count` of its kind)."""
        shards = shard_count(self._kind(session, issuer.id), issuer.crl_shards)
        return issuer if shards == issuer.crl_shards else dataclasses.replace(issuer, crl_shards=shards)
