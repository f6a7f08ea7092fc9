"""pkilint's validator walk, indexed: the same validators on the same nodes in the same order, with the same
results, for a fraction of the matching.

pkilint's ``ValidatorContainer`` visits every node of the certificate's tree and asks *every* validator of the
container whether it matches that node (``NodeVisitor.match``: a path, a path pattern, a PDU class, then a
predicate). A precertificate has a few hundred nodes and the CA/Browser Forum containers a few hundred validators,
so most of a lint was spent in ``match`` saying no (about 40 % of pkilint's CPU per certificate here).

The first three of those criteria depend only on the node's path and the Python class of its PDU, so this walk
asks them once per (path, class) and remembers the answer for each container: at a node it runs only the validators
whose static criteria hold, calling ``match`` itself only where the answer can depend on the node's value (a
predicate, a PDU supertype, or a validator class with its own ``match``). A class with its own ``match`` is skipped
on the static criteria only if it is listed below as refining pkilint's (its ``match`` begins by requiring
``super().match(node)``, which the tests check in its source); any other is asked at every node, as pkilint asks
it. Everything else is pkilint's own code:
each validator's ``validate_wrapper``, in container order, depth first, with nested containers walked the same
way and their exceptions reported as pkilint reports them (``tests/lint/test_lint_walk.py`` compares the two walks'
results on certificates with and without findings, and ``tests/zz_relint`` on every certificate the suite issued).
"""

from __future__ import annotations

import logging
from typing import Any

from pkilint.document import NodeVisitor, PDUNode
from pkilint.validation import (
    ValidationFindingDescription,
    ValidationFindingEncountered,
    ValidationResult,
    Validator,
    ValidatorContainer,
)

# pkilint logs a validator's unhandled exception on its own module's logger; the walk does the same for the
# containers it walks itself (a validator's own exceptions are still caught and logged by pkilint).
_pkilint_logger = logging.getLogger("pkilint.validation")

# Distinct (path, PDU class) keys per container are bounded by the certificate shapes a CA issues (paths carry
# indexes, so a 100-name SAN is 100 keys); the bound only guards memory against an unexpected shape.
_MAX_KEYS = 20_000

# An entry of a container's index: a validator whose static criteria hold at the key, whether match() must still
# be asked at the node, and whether the walk descends into it as a plain container.
_Entry = tuple[Validator, bool, bool]


def _plain_container(validator: Validator) -> bool:
    """A container whose walk is pkilint's own (no subclass overrides how it validates), so this module may walk
    it instead."""
    cls = type(validator)
    return (
        isinstance(validator, ValidatorContainer)
        and cls.validate is ValidatorContainer.validate
        and cls._validate_rec is ValidatorContainer._validate_rec
        and cls.validate_wrapper is Validator.validate_wrapper
    )


def _static_match(visitor: NodeVisitor, path: str, pdu_class: type) -> bool:
    """``NodeVisitor.match``'s criteria that depend on the path and the PDU's class alone (same order, same tests)."""
    wanted_path: str | None = visitor._path
    if wanted_path is not None and wanted_path != path:
        return False
    path_re = visitor._path_re
    if path_re is not None and path_re.match(path) is None:
        return False
    wanted_class = visitor._pdu_class
    return wanted_class is None or issubclass(pdu_class, wanted_class)


# Validator classes whose own match() is ``super().match(node) and …`` (or returns False when it fails): where the
# static criteria fail, theirs fail too. tests/lint/test_lint_walk.py reads each one's source to hold this list to it.
REFINING_MATCH = frozenset(
    {
        "pkilint.cabf.cabf_name.ValidCountryCodeValidatorBase",
        "pkilint.cabf.serverauth.serverauth_extension.EvCpsUriPresenceValidator",
        "pkilint.pkix.certificate.certificate_extension.ExtendedKeyUsageCriticalityValidator",
        "pkilint.pkix.extension.ExtensionCriticalityValidator",
        "pkilint.validation.TypeMatchingValidator",
    }
)


def _static_criteria_decide(cls: type) -> bool:
    """Whether a validator of *cls* can only match where ``NodeVisitor.match``'s static criteria hold."""
    for klass in cls.__mro__:
        if klass is NodeVisitor:
            return True
        if "match" in vars(klass) and f"{klass.__module__}.{klass.__qualname__}" not in REFINING_MATCH:
            return False
    return False


def _needs_node(visitor: Validator) -> bool:
    """Whether the visitor's match depends on more than the path and the PDU's class."""
    if type(visitor).match is not NodeVisitor.match:
        return True  # its own match: always asked
    return visitor._predicate is not None or visitor._pdu_supertype is not None


class IndexedWalk:
    """Walks one pkilint container (a certificate kind's whole validator set) with per-container indexes.

    Threads may share it: an index only gains whole entries (or is emptied), and a walk iterates over an entry's
    immutable tuple."""

    def __init__(self, root: ValidatorContainer) -> None:
        if not _plain_container(root):
            raise TypeError(f"{type(root).__name__} is not a plain pkilint ValidatorContainer")
        self._root = root
        self._indexes: dict[int, dict[tuple[str, type], tuple[_Entry, ...]]] = {}
        self._keep: list[ValidatorContainer] = [root]  # containers indexed by id(): kept alive with the index

    def validate(self, node: PDUNode) -> list[ValidationResult]:
        """What ``root.validate(node)`` returns."""
        results: list[ValidationResult] = []
        self._walk(self._root, node, results)
        return results

    def _entries(self, container: ValidatorContainer, node: PDUNode) -> tuple[_Entry, ...]:
        index = self._indexes.get(id(container))
        if index is None:
            index = self._indexes[id(container)] = {}
            self._keep.append(container)
        key = (node.path, type(node.pdu))
        entries = index.get(key)
        if entries is None:
            if len(index) >= _MAX_KEYS:
                index.clear()
            entries = index[key] = tuple(
                (validator, _needs_node(validator), _plain_container(validator))
                for validator in container.validators
                if not _static_criteria_decide(type(validator)) or _static_match(validator, *key)
            )
        return entries

    def _walk(self, container: ValidatorContainer, node: PDUNode, results: list[ValidationResult]) -> None:
        """``ValidatorContainer._validate_rec``: the container's matching validators at *node*, then its children."""
        for validator, ask, walk in self._entries(container, node):
            if ask and not validator.match(node):
                continue
            if walk:
                results += self._nested(validator, node)
                continue
            result: Any = validator.validate_wrapper(node)
            if isinstance(result, list):
                results += result
            else:
                results.append(result)
        for child in node.children.values():
            self._walk(container, child, results)

    def _nested(self, container: ValidatorContainer, node: PDUNode) -> list[ValidationResult]:
        """``container.validate_wrapper(node)`` for a nested plain container: its results, or, if its walk raised,
        the one finding pkilint's ``validate_wrapper`` makes of the exception (the partial results dropped)."""
        nested: list[ValidationResult] = []
        try:
            self._walk(container, node, nested)
        except ValidationFindingEncountered as e:
            return [ValidationResult(container, node, [ValidationFindingDescription(e.finding, e.message)])]
        except Exception as e:
            _pkilint_logger.exception(
                "Unhandled exception occurred when executing validator %s on node %s", container.name, node.path
            )
            finding = ValidationFindingDescription(Validator.VALIDATION_FINDING_UNHANDLED_EXCEPTION, str(e))
            return [ValidationResult(container, node, [finding])]
        return nested
