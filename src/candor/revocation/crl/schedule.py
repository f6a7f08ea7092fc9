"""When CRLs are made: every shard every ``regenerate_every`` (6 h by default), a shard with a new revocation
at the next look (every ``dirty_within``, 1 minute by default), and a shard never published at once (BR 4.9.7:
within 24 h of the first certificate and of any revocation; at least every 7 days with OCSP, 4 without).

``run_crl_loop`` is what ``candor serve``'s primary process runs, in a thread, until its stop event is set.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict

from candor.errors import CandorError
from candor.revocation.crl.generate import CrlGenerator, ShardResult

log = logging.getLogger(__name__)


class CrlScheduler:
    def __init__(self, generator: CrlGenerator) -> None:
        self.generator = generator

    def tick(self) -> list[ShardResult]:
        """Generate every shard that is due now; a shard that fails stays due and is retried next time."""
        due: dict[int, list[int]] = defaultdict(list)
        for issuer_id, shard in self.generator.due(self.generator.clock.now()):
            due[issuer_id].append(shard)
        results = []
        for issuer_id, shards in due.items():
            try:
                issuer = self.generator.prepare(issuer_id)
            except CandorError as exc:
                log.error("CRLs of issuer %d: %s", issuer_id, exc.message)
                continue
            try:
                for shard, outcome in self.generator.generate_shards(issuer, shards):
                    if isinstance(outcome, CandorError):  # recorded as crl.refused; nothing was published
                        log.error("CRL %s/%d not published: %s", issuer.name, shard, outcome.message)
                    else:
                        results.append(outcome)
            except CandorError as exc:  # the shared read (the clock, the database): every shard stays due
                log.error("CRLs of %s not generated: %s", issuer.name, exc.message)
        return results


def run_crl_loop(generator: CrlGenerator, stop: threading.Event) -> None:
    """Run :meth:`CrlScheduler.tick` every ``settings.dirty_within`` until *stop* is set (blocking)."""
    scheduler = CrlScheduler(generator)
    interval = generator.settings.dirty_within.total_seconds()
    while not stop.is_set():
        try:
            scheduler.tick()
        except Exception:  # a database outage must not end the loop: the next look retries
            log.exception("CRL loop: this round failed")
        stop.wait(interval)
