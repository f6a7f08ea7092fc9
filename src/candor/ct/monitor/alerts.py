"""What ``candor ct audit`` reports: alerts (each an audit event with outcome failure) and their details."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta

from candor.ct.log import tls
from candor.ct.monitor.entries import EntryFinding
from candor.ct.monitor.reader import TreeHead
from candor.ct.submit.loglist import LogInfo

UNKNOWN_CERTIFICATE = "ct.audit.unknown_certificate"
MISSING_CERTIFICATE = "ct.audit.missing_certificate"
INCONSISTENT_LOG = "ct.audit.inconsistent_log"  # a fork, a rollback, or entries that are not the signed tree
BAD_TREE_HEAD = "ct.audit.bad_tree_head"
CHECKED = "ct.audit.checked"


@dataclass(frozen=True)
class Alert:
    action: str
    message: str  # one line, for the operator
    details: dict[str, object]


def missing_alert(
    log_info: LogInfo, head: TreeHead, kind: str, issuer: str, serial_hex: str, sct_time: datetime, mmd: timedelta
) -> Alert:
    deadline = sct_time + mmd
    message = (f"log {log_info.description!r} has not incorporated {kind} {serial_hex} of {issuer!r}: its SCT is "
               f"from {sct_time:%Y-%m-%dT%H:%M:%SZ}, the MMD ({int(mmd.total_seconds())} s) passed at "
               f"{deadline:%Y-%m-%dT%H:%M:%SZ}, and the tree head of size {head.tree_size} does not hold it "
               "(RFC 6962 3)")  # fmt: skip
    return Alert(MISSING_CERTIFICATE, message, {
        **log_details(log_info), "kind": kind, "issuer": issuer, "serial": serial_hex,
        "sct_timestamp": sct_time.isoformat(), "mmd_seconds": int(mmd.total_seconds()),
        "tree_head": head_details(head),
    })  # fmt: skip


def unknown_alert(log_info: LogInfo, finding: EntryFinding) -> Alert:
    kind = "precertificate" if finding.entry_type is tls.EntryType.PRECERT else "certificate"
    names = f" ({', '.join(finding.names)})" if finding.names else ""
    message = (f"log {log_info.description!r} entry {finding.index}: {kind} serial {finding.serial_hex} under "
               f"{finding.issuer!r}{names} is not one Candor issued: {finding.reason}")  # fmt: skip
    return Alert(UNKNOWN_CERTIFICATE, message, {
        **log_details(log_info), "leaf_index": finding.index, "entry_type": kind, "issuer": finding.issuer,
        "serial": finding.serial_hex, "sha256": finding.sha256, "dns_names": list(finding.names),
        "reason": finding.reason, "der_hex": finding.evidence_hex,
    })  # fmt: skip


def log_details(log_info: LogInfo) -> dict[str, object]:
    return {"log": log_info.description, "operator": log_info.operator,
            "log_id": base64.b64encode(log_info.log_id).decode(), "url": log_info.submission_url}  # fmt: skip


def head_details(head: TreeHead) -> dict[str, object]:
    return {"tree_size": head.tree_size, "timestamp": head.timestamp, "sha256_root_hash": head.root_hash.hex(),
            "tree_head_signature": base64.b64encode(head.signature).decode()}  # fmt: skip


__all__ = [
    "BAD_TREE_HEAD",
    "CHECKED",
    "INCONSISTENT_LOG",
    "MISSING_CERTIFICATE",
    "UNKNOWN_CERTIFICATE",
    "Alert",
    "head_details",
    "log_details",
    "missing_alert",
    "unknown_alert",
]
