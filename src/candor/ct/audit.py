"""``candor ct audit``: Candor watching the logs it relies on, as RFC 6962 5.3 (monitors) and 5.4 (auditors) ask.

For each log, one run:

1. fetches the newest signed tree head and verifies its signature with the log list's key (3.5, 4.3);
2. checks it against the head verified last time (``ct_audit_state``): a smaller tree, or a different root for
   the same size, is a fork; otherwise the log's consistency proof between the two (2.1.2, 4.4) must verify;
3. reads the new entries (4.6, in pages, taking the shorter answers a log may give), appends their leaf hashes
   (2.1) to the stored compact range and requires the result to be the new head's root, so every entry read is
   the one the log committed to;
4. for each entry under a Candor issuer (:mod:`candor.ct.monitor.entries`), requires a matching record:
   an entry Candor did not issue is an ALERT (``ct.audit.unknown_certificate``), the sign of mis-issuance or of
   a CA key used outside the signer;
5. requires every certificate Candor issued with an SCT from this log to be in it once the log's maximum merge
   delay has passed since the SCT's timestamp (3: an SCT is a promise to incorporate the entry within the
   MMD): the precertificates whose SCTs the final certificates embed, and the final certificates the durable
   queue (``ct_submissions``) delivered. A missing one is an ALERT (``ct.audit.missing_certificate``).

A run that finds a fork, a bad signature or entries that do not hash to the root keeps the old state, so the
next run says so again. Every alert is an audit event with outcome failure, in the transaction that stores the
new state; each log's run ends with one ``ct.audit.checked`` event.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from candor.audit import AuditLog
from candor.clock import Clock
from candor.ct.log.merkle import EMPTY_ROOT, ProofError, leaf_hash, verify_consistency
from candor.ct.monitor.alerts import (
    BAD_TREE_HEAD,
    CHECKED,
    INCONSISTENT_LOG,
    MISSING_CERTIFICATE,
    UNKNOWN_CERTIFICATE,
    Alert,
    head_details,
    log_details,
    unknown_alert,
)
from candor.ct.monitor.compact import CompactRange
from candor.ct.monitor.entries import EntryFinding, IssuerIndex, UnreadableEntry, examine
from candor.ct.monitor.heads import TreeHeadError, verify_tree_head
from candor.ct.monitor.overdue import overdue
from candor.ct.monitor.reader import DEFAULT_PAGE, HttpLogReader, LogReader, LogReadError, RawEntry, TreeHead
from candor.ct.submit.loglist import LogInfo
from candor.storage import Database
from candor.storage.models_ct_audit import CtAuditSeen, CtAuditState

log = logging.getLogger(__name__)


@dataclass
class LogAudit:
    """What one run found in one log."""

    log: LogInfo
    previous_size: int | None = None  # the tree size verified before this run (None: never audited)
    head: TreeHead | None = None
    entries_read: int = 0
    candor_entries: int = 0
    unreadable_entries: int = 0
    alerts: list[Alert] = field(default_factory=list)
    error: str | None = None  # the run could not finish (the log did not answer, or not as RFC 6962 says)

    @property
    def clean(self) -> bool:
        return not self.alerts and self.error is None

    def summary(self) -> str:
        name = f"ct audit {self.log.description!r}:"
        if self.error is not None and self.head is None:
            return f"{name} not audited: {self.error}"
        size = self.head.tree_size if self.head is not None else "?"
        was = "first audit" if self.previous_size is None else f"was {self.previous_size}"
        read = f"{self.entries_read} entries read, {self.candor_entries} under Candor issuers"
        facts = f"tree size {size} ({was}; {read})"
        if self.unreadable_entries:
            facts += f", {self.unreadable_entries} unreadable"
        if self.alerts:
            return f"{name} {len(self.alerts)} ALERT(S): {facts}" + (f"; {self.error}" if self.error else "")
        if self.error is not None:
            return f"{name} incomplete: {facts}; {self.error}"
        return f"{name} ok: {facts}; consistent, entries match the signed root, nothing overdue"


ReaderFactory = Callable[[LogInfo], LogReader]


def http_reader(log_info: LogInfo) -> LogReader:
    return HttpLogReader(log_info.submission_url)


class CtAuditor:
    def __init__(
        self, *, db: Database, clock: Clock, actor: str = "ct-audit", reader_for: ReaderFactory = http_reader
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = AuditLog(clock)
        self._actor = actor
        self._reader_for = reader_for

    def audit(self, log_info: LogInfo) -> LogAudit:
        report = LogAudit(log_info)
        reader = self._reader_for(log_info)
        with self._db.session() as session:
            state = _state(session, log_info.log_id)
            if state is not None:
                report.previous_size = state.tree_size
                previous = (state.tree_size, state.root_hash, state.timestamp, state.compact_range)
            else:
                previous = (0, EMPTY_ROOT, 0, b"")
            issuers = IssuerIndex.load(session)
        try:
            head = reader.get_sth()
        except LogReadError as exc:
            report.error = str(exc)
            with self._db.session() as session:
                self._record(session, report, None)
            return report
        report.head = head
        tree = self._verified_tree(report, reader, head, previous)
        findings: list[EntryFinding] = []
        if tree is not None:
            findings = self._scan(report, reader, issuers, tree, head)
            if report.error is None and tree.root() != head.root_hash:
                self._inconsistent(report, head, previous, "the entries the log serves do not hash to the root "
                                   f"its tree head signs (RFC 6962 2.1): computed {tree.root().hex()}")  # fmt: skip
        advance = tree is not None and report.error is None and not report.alerts
        for finding in findings:
            if not finding.known:
                report.alerts.append(unknown_alert(log_info, finding))
        with self._db.session() as session:  # the new state and the events about it commit together
            if advance and tree is not None:
                _store(session, log_info, head, tree, findings, self._clock.now())
                session.flush()
                report.alerts += overdue(session, log_info, head, self._clock.now())
            self._record(session, report, head)
        return report

    # -- steps ----------------------------------------------------------------------------------------------
    def _verified_tree(
        self, report: LogAudit, reader: LogReader, head: TreeHead, previous: tuple[int, bytes, int, bytes]
    ) -> CompactRange | None:
        """Steps 1 and 2: the compact range to append the new entries to, or None after an alert."""
        size, root, _timestamp, packed = previous
        try:
            verify_tree_head(head, report.log.key_der)
        except TreeHeadError as exc:
            report.alerts.append(Alert(BAD_TREE_HEAD, f"log {report.log.description!r}: {exc}",
                                       {**log_details(report.log), "tree_head": head_details(head)}))  # fmt: skip
            return None
        if head.tree_size < size:
            self._inconsistent(report, head, previous, f"the tree shrank from {size} to {head.tree_size} entries")
            return None
        if head.tree_size == size:
            if head.root_hash != root:
                self._inconsistent(report, head, previous, f"two different roots signed for tree size {size}")
                return None
        elif size > 0:
            try:
                proof = reader.get_consistency(size, head.tree_size)
            except LogReadError as exc:
                report.error = str(exc)
                return None
            try:
                verify_consistency(size, head.tree_size, root, head.root_hash, proof)  # RFC 6962 2.1.2
            except ProofError as exc:
                self._inconsistent(report, head, previous, f"no consistent extension of size {size}: {exc}")
                return None
        return CompactRange.from_bytes(size, packed)

    def _scan(
        self, report: LogAudit, reader: LogReader, issuers: IssuerIndex, tree: CompactRange, head: TreeHead
    ) -> list[EntryFinding]:
        """Step 3 and 4: read the entries after the stored size, hash them into *tree*, examine each."""
        findings: list[EntryFinding] = []
        position = tree.size
        while position < head.tree_size:
            try:
                page = _page(reader, position, head.tree_size)
            except LogReadError as exc:
                report.error = str(exc)
                break
            with self._db.session() as session:
                for entry in page:
                    tree.append(leaf_hash(entry.leaf_input))
                    try:
                        finding = examine(session, issuers, entry.index, entry.leaf_input)
                    except UnreadableEntry as exc:
                        report.unreadable_entries += 1
                        log.warning("ct.audit log=%r entry=%d unreadable: %s", report.log.description, entry.index, exc)
                        continue
                    if finding is not None:
                        findings.append(finding)
            report.entries_read += len(page)
            position += len(page)
        report.candor_entries = len(findings)
        return findings

    def _inconsistent(
        self, report: LogAudit, head: TreeHead, previous: tuple[int, bytes, int, bytes], problem: str
    ) -> None:
        size, root, timestamp, _packed = previous
        report.alerts.append(Alert(
            INCONSISTENT_LOG, f"log {report.log.description!r} is not consistent with its earlier tree head: {problem}",
            {**log_details(report.log), "problem": problem, "tree_head": head_details(head),
             "previous_tree_head": {"tree_size": size, "sha256_root_hash": root.hex(), "timestamp": timestamp}},
        ))  # fmt: skip

    def _record(self, session: Session, report: LogAudit, head: TreeHead | None) -> None:
        """One audit event per alert, and the run's own event; the alert lines in the process log."""
        subject = f"{report.log.description} ({base64.b64encode(report.log.log_id).decode()})"[:512]
        for alert in report.alerts:
            log.error("%s %s", alert.action, alert.message)
            self._audit.record(session, actor=self._actor, action=alert.action, subject=subject,
                               outcome="failure", details=alert.details)  # fmt: skip
        self._audit.record(
            session, actor=self._actor, action=CHECKED, subject=subject,
            outcome="success" if report.clean else "failure",
            details={**log_details(report.log), "previous_tree_size": report.previous_size,
                     "tree_head": head_details(head) if head is not None else None,
                     "entries_read": report.entries_read, "candor_entries": report.candor_entries,
                     "unreadable_entries": report.unreadable_entries, "alerts": len(report.alerts),
                     "error": report.error},
        )  # fmt: skip


def _page(reader: LogReader, start: int, size: int) -> list[RawEntry]:
    """Up to DEFAULT_PAGE entries from *start*; the log answers with as many as it will (RFC 6962 4.6)."""
    return reader.get_entries(start, min(start + DEFAULT_PAGE, size) - 1)


def _state(session: Session, log_id: bytes) -> CtAuditState | None:
    return session.scalars(select(CtAuditState).where(CtAuditState.log_id == log_id)).one_or_none()


def _store(
    session: Session, log_info: LogInfo, head: TreeHead, tree: CompactRange, findings: list[EntryFinding],
    now: datetime,
) -> None:  # fmt: skip
    state = _state(session, log_info.log_id)
    if state is None:
        state = CtAuditState(log_id=log_info.log_id)
        session.add(state)
    state.log_description = log_info.description[:200]
    state.tree_size, state.root_hash, state.timestamp = head.tree_size, head.root_hash, head.timestamp
    state.compact_range, state.checked_at = tree.to_bytes(), now
    seen = set(session.scalars(select(CtAuditSeen.certificate_id).where(CtAuditSeen.log_id == log_info.log_id)))
    for finding in findings:
        if finding.known and finding.certificate_id is not None and finding.certificate_id not in seen:
            seen.add(finding.certificate_id)
            session.add(CtAuditSeen(log_id=log_info.log_id, certificate_id=finding.certificate_id,
                                    leaf_index=finding.index, seen_at=now))  # fmt: skip


__all__ = [
    "BAD_TREE_HEAD",
    "CHECKED",
    "INCONSISTENT_LOG",
    "MISSING_CERTIFICATE",
    "UNKNOWN_CERTIFICATE",
    "Alert",
    "CtAuditor",
    "LogAudit",
    "http_reader",
]
