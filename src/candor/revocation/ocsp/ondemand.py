"""Signing on demand for requests that carry a nonce (``[ocsp] nonce = "sign"``; RFC 6960 4.4.1 as RFC 9654 2.1
replaces it).

The serving process signs, in one of a fixed number of threads (``on_demand_concurrency``), a response that echoes
the request's nonce and says what the pre-signed response for that serial says: its certStatus (good, or revoked
with the same time and reason), thisUpdate and nextUpdate are copied from it, so a nonce never yields another
answer than the cache, and a serial without a pre-signed response stays ``unauthorized`` (the caller never asks).
Only producedAt (now), the CertID (in the request's hash) and the nonce are new. The signer is the issuer's current
identity (:mod:`candor.revocation.ocsp.identities`), the one the pre-signer uses, from this process's key stores.

Signatures cost CPU that a flood of nonce requests could claim: when every thread is busy the caller serves the
pre-signed response instead (RFC 5019 2.1.1 behaviour). The first response of this shape per identity is linted by
pkilint before it is sent (fail closed: the identity then only serves the cache). Audit (BR 5.4.1 "OCSP
signing"): one ``ocsp.sign`` event per issuer per minute of signing, with the count and the SHA-256 over the
responses and over the serials, as the pre-signer records a batch.

Signer side: this module loads keys. ``candor serve`` gives each worker its own (``candor.cli.ocsp_edge``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from candor.audit import AuditLog
from candor.clock import Clock
from candor.errors import CandorError
from candor.keys import KeyStores
from candor.revocation.ocsp import der
from candor.revocation.ocsp.entries import Entry
from candor.revocation.ocsp.identities import Identity, load_identities
from candor.revocation.ocsp.index import ParsedRequest
from candor.revocation.ocsp.lint import require_clean_response
from candor.revocation.ocsp.settings import OcspSettings
from candor.storage import Database
from candor.timekeeping import ClockWatch, TrustedClock

log = logging.getLogger(__name__)
RELOAD_EVERY = timedelta(minutes=1)  # how soon a rotated responder signs on demand too
NONCED = "nonced"  # the shape linted once per identity
REFUSED = "nonced-refused"


@dataclass
class _Tally:
    """What one issuer's responder signed on demand since the last audit event."""

    count: int = 0
    responses: Any = field(default_factory=hashlib.sha256)
    serials: Any = field(default_factory=hashlib.sha256)


class NonceSigner:
    """:class:`candor.revocation.ocsp.http.OnDemandSigner` with the responder keys of this process's stores."""

    def __init__(
        self,
        db: Database,
        stores: KeyStores,
        clock: Clock,
        settings: OcspSettings,
        *,
        actor: str = "ocsp-responder",
        audit_every: timedelta = timedelta(minutes=1),
        clock_watch: ClockWatch | None = None,
    ) -> None:
        self.db = db
        self.clock_watch = clock_watch if clock_watch is not None else TrustedClock()
        self.stores = stores
        self.clock = clock
        self.settings = settings
        self.actor = actor
        self.audit = AuditLog(clock)
        self.audit_every = audit_every
        self.saturated = 0  # nonce requests answered from the cache because every thread was busy
        self._free = settings.on_demand_concurrency  # read and written on the event loop only
        self._pool = ThreadPoolExecutor(max_workers=settings.on_demand_concurrency, thread_name_prefix="ocsp-nonce")
        self._lock = threading.Lock()  # identities, tallies
        self._identities: dict[int, Identity] = {}
        self._by_key_hash: dict[bytes, Identity] = {}
        self._loaded_at: datetime | None = None
        self._tallies: dict[tuple[int, int | None], _Tally] = {}  # by issuer and responder
        self._audited_at = clock.now()

    async def sign(self, request: ParsedRequest, cached: Entry) -> bytes | None:
        if self._free <= 0:
            self.saturated += 1
            return None
        self._free -= 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, self.sign_now, request, cached)
        finally:
            self._free += 1

    def sign_now(self, request: ParsedRequest, cached: Entry) -> bytes | None:
        """The nonced response (blocking), or None when this process cannot sign it (the cache answers)."""
        if request.nonce is None or not self.clock_watch.status().trustworthy:
            return None  # producedAt comes from the clock: while it is distrusted, the pre-signed response answers
        try:
            now = self.clock.now()
            identity = self._identity(request, now)
            if identity is None or REFUSED in identity.linted:
                return None
            builder = identity.builder
            cached_id, single_tail = der.first_single(cached.der)
            if not cached_id.endswith(der.integer(request.serial)) or cached.next_update > builder.not_after:
                return None  # not this serial's, or outliving the current signer: the cache answers as it is
            cert_id = builder.issuer.cert_id(request.serial, sha256=request.sha256)
            response = builder.build_nonced(cert_id, single_tail, produced_at=now, nonce=request.nonce)
            if NONCED not in identity.linted and not self._lint(identity, response):
                return None
            self._count(identity, request.serial, response, now)
            return response
        except (CandorError, ValueError):  # a key store or a stored response in a state we cannot sign from
            log.exception("ocsp: no response signed on demand; the pre-signed one is served")
            return None

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._write_audit(self.clock.now())

    # -- internals --------------------------------------------------------------------------------------
    def _identity(self, request: ParsedRequest, now: datetime) -> Identity | None:
        key_hash = request.key[: 32 if request.sha256 else 20]
        with self._lock:
            if self._loaded_at is None or now - self._loaded_at >= RELOAD_EVERY:
                self._loaded_at = now  # a failure is retried after RELOAD_EVERY, not on every request
                try:
                    self._identities = load_identities(self.db, self.stores, self.settings, now, self._identities)
                except Exception:  # the database or a key store is out: the identities known so far, or the cache
                    log.exception("ocsp: the signing identities could not be read; nonce requests may get the cache")
                self._by_key_hash = {}
                for identity in self._identities.values():
                    hashes = identity.builder.issuer
                    self._by_key_hash[hashes.key_sha1] = self._by_key_hash[hashes.key_sha256] = identity
            return self._by_key_hash.get(key_hash)

    def _lint(self, identity: Identity, response: bytes) -> bool:
        try:
            require_clean_response(response, what=f"{identity.issuer_name} response signed on demand")
        except CandorError as exc:
            log.error("ocsp: %s; nonce requests for this issuer get the pre-signed response", exc.message)
            identity.linted.add(REFUSED)
            return False
        identity.linted.add(NONCED)
        return True

    def _count(self, identity: Identity, serial: int, response: bytes, now: datetime) -> None:
        with self._lock:
            key = (identity.issuer_id, identity.responder_id)
            tally = self._tallies.get(key)
            if tally is None:
                tally = self._tallies[key] = _Tally()
            tally.count += 1
            tally.responses.update(response)
            tally.serials.update(b"%x," % serial)
            due = now - self._audited_at >= self.audit_every
        if due:
            self._write_audit(now)

    def _write_audit(self, now: datetime) -> None:
        """One ``ocsp.sign`` event per issuer for what was signed on demand since the last one. The counts are
        kept under the lock until written (a signature meanwhile waits; a database outage keeps them for later)."""
        with self._lock:
            self._audited_at = now
            if not self._tallies:
                return
            names = {identity.issuer_id: identity.issuer_name for identity in self._identities.values()}
            try:
                with self.db.session() as session:
                    for (issuer_id, responder_id), tally in self._tallies.items():
                        self.audit.record(
                            session,
                            actor=self.actor,
                            action="ocsp.sign",
                            subject=names.get(issuer_id, str(issuer_id)),
                            outcome="success",
                            details={
                                "count": tally.count,
                                "on_demand": True,
                                "responder_id": responder_id,
                                "serials_sha256": tally.serials.hexdigest(),
                                "responses_sha256": tally.responses.hexdigest(),
                            },
                        )
            except Exception:  # the database is out: the next signature after audit_every tries again
                log.exception("ocsp: the audit event for responses signed on demand could not be written")
                return
            self._tallies = {}
