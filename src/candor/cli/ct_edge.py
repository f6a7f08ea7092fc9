"""Certificate Transparency for ``candor serve`` and the CLI: the logs this data directory runs, the log list
it publishes for them, the submitter the signer obtains SCTs from, and the queue of final certificates.

The embedded default runs two logs (``[[ct.logs]]``, operators A and B) and submits every precertificate to
the logs of ``[ct.submit] log_list``, which by default is the list ``candor serve`` publishes for its own logs
(``public/ct/log_list.json``). Submissions to the logs this process serves go straight to them
(:class:`candor.ct.submit.local.LocalLogs`), so that the ACME listener's own certificate can be logged before
any listener accepts connections; any other log is reached over HTTP.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from starlette.routing import BaseRoute

from candor.cli.context import Context
from candor.clock import Clock
from candor.config import database_url
from candor.dburl import resolve_database_url
from candor.errors import CandorError, ErrorKind
from candor.issuance import IssuedChain, Signer
from candor.keys import KeyStores
from candor.storage import Database, repositories

log = logging.getLogger(__name__)
LOG_LIST = Path("public") / "ct" / "log_list.json"
# How often the primary looks for final certificates other workers queued; a row that failed waits for its own
# backoff (next_attempt_at), and a look that finds nothing due writes nothing.
DRAIN_POLL = timedelta(seconds=1)


@dataclass
class OwnLogs:
    """The logs of ``[[ct.logs]]``, open in this process."""

    logs: list[tuple[Any, Any]] = field(default_factory=list)  # (CtLogSettings, CtLog)
    database: Database | None = None  # the logs' own database ([ct] database), closed with them

    def routes(self) -> list[BaseRoute]:
        from candor.ct.log import ct_log_routes

        found: list[BaseRoute] = []
        for settings, ct_log in self.logs:
            found.extend(ct_log_routes(ct_log, prefix=settings.prefix))
        return found

    def submission_urls(self, base_url: str) -> dict[str, Any]:
        return {f"{base_url}{settings.prefix}/": ct_log for settings, ct_log in self.logs}

    def close(self) -> None:
        try:
            for _, ct_log in self.logs:
                ct_log.close()
        finally:
            if self.database is not None:
                self.database.dispose()


def open_own_logs(context: Context, stores: KeyStores, *, sequence: bool = True) -> OwnLogs:
    """Open and start every configured log. With *sequence* (one process at a time: ``candor serve`` itself,
    then its primary worker) each log integrates and signs tree heads; the other workers store submissions and
    give SCTs too, and follow the tree heads stored (:meth:`candor.ct.log.CtLog.start`)."""
    from candor.ct.log import SharedWriter, open_log

    own = OwnLogs()
    try:
        if context.config.ct.logs:
            own.database = logs_database(context)
        db = own.database or context.db
        writer = SharedWriter(db)  # the logs share one database: one transaction per batch for all
        for settings in context.config.ct.logs:
            ct_log = open_log(
                settings, db=db, clock=context.clock, stores=stores, data_dir=context.data_dir,
                public_base_url=context.config.server.public_base_url, writer=writer, registry=context.db,
            )  # fmt: skip
            ct_log.start(sequence=sequence)
            own.logs.append((settings, ct_log))
    except BaseException:
        own.close()
        raise
    return own


def logs_database(context: Context, *, migrate: bool = False) -> Database | None:
    """The logs' own database (``[ct] database``), or None where they keep their tables in the CA's. A new one
    (no schema yet) is created; one at an older revision is upgraded only with *migrate* (``candor db
    upgrade``), as the CA's is."""
    url = context.config.ct.database
    if url is None:
        return None
    resolved = resolve_database_url(url, context.data_dir)
    if resolved == database_url(context.config.database, context.data_dir):
        return None  # the CA's own, named twice
    db = Database(resolved)
    try:
        revision = db.current_revision()
        if revision is None or migrate:
            db.upgrade()
        elif revision != db.head_revision():
            raise CandorError(
                ErrorKind.STORAGE, "the CT logs' database schema is not current; run 'candor db upgrade' first"
            )
    except BaseException:
        db.dispose()
        raise
    return db


def publish_log_list(context: Context, own: OwnLogs) -> Path | None:
    """Write the v3 log list of this server's own logs (what certspotter and ``[ct.submit]`` read)."""
    from candor.ct.submit.loglist import LogInfo, LogKind, LogState, log_list_document

    if not own.logs:
        return None
    base_url = context.config.server.public_base_url
    by_operator: dict[str, list[LogInfo]] = {}
    for settings, ct_log in own.logs:
        by_operator.setdefault(settings.operator, []).append(
            LogInfo(
                operator=settings.operator,
                description=f"Candor {settings.name}",
                log_id=ct_log.log_id,
                key_der=ct_log.public_key_der,
                submission_url=f"{base_url}{settings.prefix}/",
                mmd_seconds=settings.mmd_seconds,
                state=LogState.USABLE,
                state_since=datetime(2020, 1, 1, tzinfo=UTC),
                kind=LogKind.RFC6962,
            )
        )
    document = log_list_document(
        [(operator, f"ct@{operator.lower().replace(' ', '-')}.invalid", logs) for operator, logs in by_operator.items()]
    )
    document["log_list_timestamp"] = context.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    path = context.data_dir / LOG_LIST
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)
    return path


@dataclass
class Transparency:
    """The submitter (the signer's SctSource) and the final-certificate queue, with their shutdown."""

    submitter: Any  # CtSubmitter
    final: Any  # FinalSubmissions
    clock: Clock

    def submit_final(self, issued: IssuedChain) -> None:
        """Send the final certificate to the logs whose SCTs it embeds now (``candor issue``, which runs no drain
        loop); a failure stays queued (RFC 6962 3)."""
        try:
            self.final.submit_final(issued.certificate)
        except CandorError as exc:
            log.warning("ct.submit.final: %s (queued for retry)", exc.message)

    def drain_until(self, stop: threading.Event) -> None:
        """Submit the queued final certificates until *stop* (or :meth:`close`) is set: soon after this process
        queued one (:meth:`FinalSubmissions.wake`, which gathers a batch first), else every DRAIN_POLL (what the
        other workers queued)."""
        from candor.ct.submit.final import run_drain_loop

        run_drain_loop(self.final, clock=self.clock, stop=stop, interval=DRAIN_POLL)

    def close(self) -> None:
        self.submitter.close()


def transparency(context: Context, own: OwnLogs | None) -> Transparency | None:
    """The CT submitter ``[ct.submit]`` describes, or None when it names no log list. The signer that gets it
    obtains SCTs for every precertificate and fails closed when the CT policy cannot be met."""
    from candor.ct.submit.client import CtSubmitter
    from candor.ct.submit.final import FinalSubmissions
    from candor.ct.submit.local import LocalLogs
    from candor.ct.submit.loglist import load_log_list

    settings = context.config.ct.submit
    path = settings.log_list_path(context.data_dir)
    if path is None:
        return None
    if not path.exists():
        raise CandorError(
            ErrorKind.CONFIG,
            f"ct.submit.log_list: {path} does not exist (candor serve writes it for its own logs at start-up)",
        )
    with context.db.session() as session:
        ca_certificates = [
            x509.load_der_x509_certificate(i.certificate_der) for i in repositories.list_issuers(session)
        ]
    local = own.submission_urls(context.config.server.public_base_url) if own is not None else {}
    submitter = CtSubmitter(
        load_log_list(path), clock=context.clock, settings=settings, ca_certificates=ca_certificates,
        transport=LocalLogs(local), db=context.db, actor=context.actor,
    )  # fmt: skip
    final = FinalSubmissions(db=context.db, submitter=submitter, clock=context.clock)
    return Transparency(submitter, final, context.clock)


class LoggedSigner:
    """The signer as the ACME front end's finalizer. The signer queues each final certificate for the logs whose
    SCTs it embeds in the transaction that stores it (the submitter is its FinalQueue); this wakes the drain loop
    so that the queue is paid at once, in the background, and the finalize request never waits for a log."""

    def __init__(self, signer: Signer, ct: Transparency) -> None:
        self._signer, self._ct = signer, ct

    def finalize(self, order_id: int, csr: bytes) -> IssuedChain:
        issued = self._signer.finalize(order_id, csr)
        self._ct.final.wake()
        return issued
