"""The hash-chained audit log of security-relevant events (BR 5.4.1)."""

from candor.audit.chain import GENESIS, canonical_event, event_hash
from candor.audit.log import AuditLog, ChainReport, PreparedEvent, verify_chain

__all__ = ["GENESIS", "AuditLog", "ChainReport", "PreparedEvent", "canonical_event", "event_hash", "verify_chain"]
