"""The Public Suffix List, ICANN section only (BR 3.2.2.6 "SHOULD consult the ICANN DOMAINS section only").

Data: the ``public_suffix_list.dat`` shipped inside the pinned ``publicsuffixlist`` package (its header
carries the list's VERSION line; see :func:`psl_version`). Only the file is used; the matching algorithm
(https://publicsuffix.org/list/ "Formal algorithm") is implemented here on A-labels. The file is read once,
on first use, and cached; after that every function is pure.

The same section gives Candor its set of delegated top-level domains (BR 1.6.1 "Internal Name": a name is
internal unless it ends in a TLD registered in IANA's Root Zone Database). The PSL's ICANN section lists every
root-zone TLD; its one known non-delegated entry, ``onion``, is refused separately as a special-use name.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

import idna

from candor.errors import CandorError, ErrorKind

__all__ = ["delegated_tlds", "is_public_suffix", "psl_version", "public_suffix", "registered_domain"]

_BEGIN, _END = "// ===BEGIN ICANN DOMAINS===", "// ===END ICANN DOMAINS==="


@dataclass(frozen=True)
class _Rules:
    version: datetime
    exact: frozenset[str]
    wildcard: frozenset[str]  # "ck" for the rule "*.ck"
    exception: frozenset[str]  # "www.ck" for the rule "!www.ck"
    tlds: frozenset[str]


def _a_label(label: str) -> str:
    return label if label.isascii() else idna.alabel(label).decode("ascii")


@cache
def _rules() -> _Rules:
    text = importlib.resources.files("publicsuffixlist").joinpath("public_suffix_list.dat").read_text("utf-8")
    lines = [line.strip() for line in text.splitlines()]
    version = next(line for line in lines if line.startswith("// VERSION: ")).removeprefix("// VERSION: ")
    section = lines[lines.index(_BEGIN) + 1 : lines.index(_END)]
    exact: set[str] = set()
    wildcard: set[str] = set()
    exception: set[str] = set()
    for line in section:
        if not line or line.startswith("//"):
            continue
        rule = ".".join(_a_label(label) for label in line.split()[0].lower().split("."))
        if rule.startswith("!"):
            exception.add(rule[1:])
        elif rule.startswith("*."):
            wildcard.add(rule[2:])
        else:
            exact.add(rule)
    exact |= wildcard  # "*.kobe.jp" makes "kobe.jp" public too (the PSL linter requires the parent implicitly)
    tlds = frozenset(rule.rsplit(".", 1)[-1] for rule in exact | exception)
    stamp = datetime.strptime(version, "%Y-%m-%d_%H-%M-%S_UTC").replace(tzinfo=UTC)
    return _Rules(stamp, frozenset(exact), frozenset(wildcard), frozenset(exception), tlds)


def psl_version() -> datetime:
    """When the shipped list was published (its VERSION header), for staleness checks (BR 3.2.2.6)."""
    return _rules().version


def delegated_tlds() -> frozenset[str]:
    """Top-level domains (A-labels) in the ICANN section: Candor's view of the IANA root zone."""
    return _rules().tlds


def _suffix_length(labels: list[str]) -> int:
    """Number of rightmost labels forming the public suffix (PSL formal algorithm, ICANN rules)."""
    rules = _rules()
    longest = 1  # the implicit "*" rule
    for count in range(1, len(labels) + 1):
        candidate = ".".join(labels[-count:])
        if candidate in rules.exception:
            return count - 1  # an exception rule prevails; drop its leftmost label
        if candidate in rules.exact or (count > 1 and ".".join(labels[-count + 1 :]) in rules.wildcard):
            longest = count
    return longest


def _labels(name: str) -> list[str]:
    fqdn = name.removeprefix("*.")
    labels = fqdn.split(".")
    if not fqdn or "" in labels or not fqdn.isascii() or fqdn != fqdn.lower():
        raise ValueError(f"expected a normalised A-label domain name, got {name!r}")
    return labels


def public_suffix(name: str) -> str:
    """The public suffix of *name* (a normalised A-label FQDN; a leading ``*.`` is ignored)."""
    labels = _labels(name)
    return ".".join(labels[-min(_suffix_length(labels), len(labels)) :])


def is_public_suffix(name: str) -> bool:
    """Whether *name* itself is a public suffix (``com``, ``co.uk``, ``anything.ck`` but not ``www.ck``)."""
    labels = _labels(name)
    return _suffix_length(labels) >= len(labels)


def registered_domain(name: str) -> str:
    """The registered domain (eTLD+1) of *name*, e.g. ``www.example.co.uk`` -> ``example.co.uk``.

    Raises CandorError(POLICY) when *name* is itself a public suffix and so has no registered domain.
    """
    labels = _labels(name)
    length = _suffix_length(labels)
    if length >= len(labels):
        raise CandorError(
            ErrorKind.REJECTED_IDENTIFIER, f"BR 3.2.2.6 / PSL: {name} is a public suffix, not a registrable domain"
        )
    return ".".join(labels[-(length + 1) :])
