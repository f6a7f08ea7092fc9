"""Sharded CRLs (BR 4.9.7, 4.10.1, 7.2; RFC 5280 5).

This module exposes what needs no key: the shard function and URLs, and the dirty-shard marker that
revocation calls. Generation, which signs with the issuers' keys, is :mod:`candor.revocation.crl.generate`
(:class:`~candor.revocation.crl.generate.CrlGenerator`) and the loop :mod:`candor.revocation.crl.schedule`
(:func:`~candor.revocation.crl.schedule.run_crl_loop`); internet-facing code imports neither.
"""

from __future__ import annotations

from candor.revocation.crl.marks import mark_revoked
from candor.revocation.crl.shards import shard_of, shard_url, shard_urls

__all__ = ["mark_revoked", "shard_of", "shard_url", "shard_urls"]
