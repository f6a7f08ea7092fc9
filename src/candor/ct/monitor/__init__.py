"""Reading CT logs as a monitor and auditor (RFC 6962 5.3, 5.4): the HTTP read client, tree head signatures,
the compact range that checks entries against a signed root, and the matching of entries to Candor's records.
``candor.ct.audit`` puts them together."""

from candor.ct.monitor.compact import CompactRange
from candor.ct.monitor.entries import EntryFinding, IssuerIndex, UnreadableEntry, examine
from candor.ct.monitor.heads import TreeHeadError, verify_tree_head
from candor.ct.monitor.reader import DEFAULT_PAGE, HttpLogReader, LogReader, LogReadError, RawEntry, TreeHead

__all__ = [
    "DEFAULT_PAGE",
    "CompactRange",
    "EntryFinding",
    "HttpLogReader",
    "IssuerIndex",
    "LogReadError",
    "LogReader",
    "RawEntry",
    "TreeHead",
    "TreeHeadError",
    "UnreadableEntry",
    "examine",
    "verify_tree_head",
]
