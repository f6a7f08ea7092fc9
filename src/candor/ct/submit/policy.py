"""Does a set of verified SCTs meet the CT policy for a certificate? Pure: facts in, a verdict out.

The rules, as data (``RULES``), each naming its source:

* Chrome CT policy (GoogleChrome/CertificateTransparency ``ct_policy.md``, embedded SCTs): SCTs from at least
  N distinct logs, N = 2 when the certificate's lifetime is at most 180 days and 3 when it is longer, among
  them at least 2 distinct log operators.
* Apple CT policy (support.apple.com HT205280 / 103214): the same 2/3 counts, at most 1 SCT per operator counts
  for lifetimes up to 180 days and at most 2 beyond, and "at least one SCT must be issued from a log compliant
  with RFC 6962" (the others may be static-ct-api logs).
* Candor WS-08c (anti-backdating): every SCT's timestamp is at most 48 hours after notBefore. A notBefore far
  behind the time the precertificate was logged is backdating, which BR 7.1.2.7 (validity starts no earlier
  than the signing time, less a small allowance) forbids; WoSign backdated SHA-1 certificates to before the
  2016-01-01 sunset, and the CT timestamps are what proved it (Mozilla, "WoSign Issues", Issue S, 2016).

A certificate is held to the union: the strictest count and the per-operator cap from Apple, the distinct
operators from Chrome, and the RFC 6962 log from Apple.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from candor.ct.submit.loglist import LogKind
from candor.ct.submit.sct import VerifiedSct

LONG_LIFETIME = timedelta(days=180)  # Chrome and Apple: "180 days or less" needs 2 SCTs, longer needs 3
MAX_SCT_AFTER_NOT_BEFORE = timedelta(hours=48)  # WS-08c; BR 7.1.2.7


@dataclass(frozen=True)
class Requirement:
    scts: int  # SCTs from distinct logs
    operators: int  # distinct operators among them
    per_operator: int  # at most this many SCTs of one operator count
    rfc6962: int  # at least this many from RFC 6962 (not static-ct-api) logs


RULES: tuple[tuple[timedelta, Requirement, str], ...] = (
    # (lifetime up to and including, requirement, source)
    (LONG_LIFETIME, Requirement(2, 2, 1, 1), "Chrome CT policy; Apple CT policy (lifetime <= 180 days)"),
    (timedelta.max, Requirement(3, 2, 2, 1), "Chrome CT policy; Apple CT policy (lifetime > 180 days)"),
)


@dataclass(frozen=True)
class Verdict:
    met: bool
    required: Requirement
    reasons: tuple[str, ...]  # why not, one short sentence each; empty when met

    def explain(self) -> str:
        return "; ".join(self.reasons) if self.reasons else "CT policy met"


def requirement(not_before: datetime, not_after: datetime) -> Requirement:
    """The requirement for a certificate valid from *not_before* to *not_after* (lifetime = the difference)."""
    lifetime = not_after - not_before
    for longest, needed, _source in RULES:
        if lifetime <= longest:
            return needed
    raise AssertionError("the last rule covers every lifetime")


def evaluate(scts: Sequence[VerifiedSct], *, not_before: datetime, not_after: datetime) -> Verdict:
    """Whether *scts* (each already verified against its log) satisfy the policy for this validity period."""
    needed = requirement(not_before, not_after)
    reasons: list[str] = []
    late = [s for s in scts if s.sct.time - not_before > MAX_SCT_AFTER_NOT_BEFORE]
    if late:
        names = ", ".join(sorted({s.log.description for s in late}))
        reasons.append(f"WS-08c/BR 7.1.2.7: SCTs from {names} are more than 48 h after notBefore (backdating)")
    by_log = {s.log.log_id: s for s in scts if s not in late}  # one SCT per log counts
    per_operator = Counter(s.log.operator for s in by_log.values())
    counted = sum(min(n, needed.per_operator) for n in per_operator.values())
    if counted < needed.scts:
        reasons.append(
            f"{counted} SCT(s) count from distinct logs (at most {needed.per_operator} per operator), "
            f"{needed.scts} needed"
        )
    if len(per_operator) < needed.operators:
        reasons.append(f"{len(per_operator)} distinct log operator(s), {needed.operators} needed")
    rfc6962 = sum(1 for s in by_log.values() if s.log.kind is LogKind.RFC6962)
    if rfc6962 < needed.rfc6962:
        reasons.append("no SCT from an RFC 6962 log (Apple CT policy)")
    return Verdict(not reasons, needed, tuple(reasons))


__all__ = ["MAX_SCT_AFTER_NOT_BEFORE", "RULES", "Requirement", "Verdict", "evaluate", "requirement"]
