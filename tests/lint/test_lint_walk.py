"""The indexed walk of pkilint's validators (candor.lint.walk) gives exactly pkilint's own results: the same
validators, on the same nodes, in the same order, with the same findings, on certificates with and without
findings, and when a nested container's walk raises."""

from __future__ import annotations

import ast
import inspect
import re
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from pkilint import loader
from pkilint.document import NodeVisitor, PDUNode
from pkilint.validation import (
    ValidationFinding,
    ValidationFindingEncountered,
    ValidationFindingSeverity,
    Validator,
    ValidatorContainer,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "profiles"))

from subscriber_pki import NOW, issuing_ca, request, root, template

from candor.lint import CertificateKind
from candor.lint import walk as walk_module
from candor.lint.certificates import _validator, lint_certificate
from candor.lint.walk import REFINING_MATCH, IndexedWalk
from candor.policy.algorithms import KeyAlgorithm
from candor.profiles import precertificate, to_builder


def _signed(builder: x509.CertificateBuilder) -> bytes:
    ca = issuing_ca("dv")
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(Encoding.DER)


def _subscriber(final: bool, level: str = "dv", **names: Any) -> bytes:
    shape = template(request(level, **names))  # type: ignore[arg-type]
    built = to_builder(shape if final else precertificate(shape))
    return built.sign(issuing_ca(level).key, KeyAlgorithm.ECDSA_P256.signature_hash()).public_bytes(Encoding.DER)  # type: ignore[arg-type]


def _odd() -> bytes:
    """A certificate that breaks many rules at once: no SAN, a long validity, an unknown critical extension, a
    CA flag on a leaf key usage, a subject with an odd country."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "ZZ"), x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuing_ca("dv").certificate.subject)
        .public_key(key.public_key())
        .serial_number(5)
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=900))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=False)
        .add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00"), True)
        .add_extension(x509.KeyUsage(True, False, True, False, False, True, True, False, False), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CODE_SIGNING]), critical=True)
    )  # fmt: skip
    return _signed(builder)


CERTIFICATES = {
    "dv precertificate": lambda: _subscriber(False),
    "dv final": lambda: _subscriber(True),
    "ov final": lambda: _subscriber(True, "ov"),
    "ev precertificate": lambda: _subscriber(False, "ev"),
    "dv with a subject CN": lambda: _subscriber(True, common_name="www.example.com"),
    "odd": _odd,
    "tls ca": lambda: issuing_ca("dv").certificate.public_bytes(Encoding.DER),
    "root": lambda: root().certificate.public_bytes(Encoding.DER),
}


def _results(results: list[Any]) -> list[tuple[int, str, list[Any]]]:
    return [(id(r.validator), r.node.path, r.finding_descriptions) for r in results]


def _document(der: bytes) -> PDUNode:
    return loader.RFC5280CertificateDocumentLoader().load_der_document(der, "certificate").root  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", list(CertificateKind))
def test_every_kind_gives_pkilints_own_results_on_every_certificate(kind: CertificateKind) -> None:
    container, _ = _validator(kind)
    walk = IndexedWalk(container)
    findings = 0
    for name, make in CERTIFICATES.items():
        der = make()
        expected = container.validate(_document(der))
        for _ in range(2):  # the second walk runs from the index the first one built
            assert _results(walk.validate(_document(der))) == _results(expected), name
        findings += sum(len(r.finding_descriptions) for r in expected)
        assert lint_certificate(der, kind) == lint_certificate(der, kind, indexed=False), name
    assert findings > 0  # the comparison covered findings, not only clean certificates


def test_a_full_index_is_emptied_and_the_results_do_not_change(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(walk_module, "_MAX_KEYS", 3)
    container, _ = _validator(CertificateKind.DV_CERTIFICATE)
    walk = IndexedWalk(container)
    for make in CERTIFICATES.values():
        der = make()
        assert _results(walk.validate(_document(der))) == _results(container.validate(_document(der)))
    assert all(len(index) <= 3 for index in walk._indexes.values())


_FINDING = ValidationFinding(ValidationFindingSeverity.ERROR, "test.raised")


class _Raising(Validator):
    """Matches the subject's RDNs and raises while matching, as a predicate with a bug would."""

    def __init__(self, error: Exception) -> None:
        super().__init__(path_re=re.compile(r".*\.subject\.rdnSequence\.\d+$"))
        self._error = error

    def match(self, node: PDUNode) -> bool:
        if super().match(node):
            raise self._error
        return False


@pytest.mark.parametrize("error", [ValueError("predicate bug"), ValidationFindingEncountered(_FINDING, "raised")])
def test_a_nested_container_that_raises_is_reported_as_pkilint_reports_it(error: Exception) -> None:
    der = _subscriber(True, common_name="www.example.com")
    before = Validator(path="certificate.tbsCertificate.serialNumber")  # its result is dropped with the raise
    nested = ValidatorContainer(validators=[before, _Raising(error)], path="certificate.tbsCertificate")
    root_container = ValidatorContainer(validators=[nested, *_validator(CertificateKind.DV_CERTIFICATE)[0].validators])
    expected = root_container.validate(_document(der))
    got = IndexedWalk(root_container).validate(_document(der))
    assert _results(got) == _results(expected)
    assert not [r for r in got if r.validator is before]  # pkilint drops a raising container's partial results
    raised = [r for r in got if r.validator is nested]
    codes = ("base.unhandled_exception", "test.raised")
    assert len(raised) == 1 and raised[0].finding_descriptions[0].finding.code in codes


def test_each_of_nodevisitors_criteria_selects_the_nodes_pkilint_selects() -> None:
    """pkilint's own certificate validators use paths, classes and predicates; a path pattern is tried here too."""
    from pyasn1.type import univ
    from pyasn1_alt_modules import rfc5280

    der = _subscriber(True, common_name="www.example.com")
    criteria: list[dict[str, Any]] = [
        {"path": "certificate.tbsCertificate.serialNumber"},
        {"path_re": re.compile(r".*\.extensions\.\d+$")},
        {"path_re": re.compile(r".*\.extnID$"), "pdu_class": rfc5280.Extension},  # both must hold: never
        {"pdu_class": rfc5280.AttributeTypeAndValue},
        {"predicate": lambda node: node.name == "critical"},
        {"path_re": re.compile(r".*\.rdnSequence\.\d+$"), "predicate": lambda node: len(node.children) == 1},
        {"pdu_supertype": univ.Integer()},  # asked at every node: it depends on the value's tags
    ]
    container = ValidatorContainer(validators=[Validator(**c) for c in criteria])
    expected = container.validate(_document(der))
    assert _results(IndexedWalk(container).validate(_document(der))) == _results(expected)
    matched = {container.validators.index(r.validator) for r in expected}
    assert matched == {0, 1, 3, 4, 5, 6}, matched


def _requires_super_match_first(function: Any) -> bool:
    """The function's first statement is ``if not super().match(node): return False`` or
    ``return super().match(node) and …``."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    first = body[1] if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) else body[0]

    def super_match(expression: ast.expr) -> bool:
        return (
            isinstance(expression, ast.Call)
            and isinstance(expression.func, ast.Attribute)
            and expression.func.attr == "match"
            and isinstance(expression.func.value, ast.Call)
            and isinstance(expression.func.value.func, ast.Name)
            and expression.func.value.func.id == "super"
        )

    if isinstance(first, ast.If):
        test = first.test
        returns_false = (
            len(first.body) == 1
            and isinstance(first.body[0], ast.Return)
            and isinstance(first.body[0].value, ast.Constant)
            and first.body[0].value.value is False
        )
        negated = isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)
        return negated and super_match(test.operand) and returns_false  # type: ignore[attr-defined]
    if isinstance(first, ast.Return) and isinstance(first.value, ast.BoolOp) and isinstance(first.value.op, ast.And):
        return super_match(first.value.values[0])
    return False


def _classes_in(container: ValidatorContainer) -> set[type]:
    found = {type(container)}
    for validator in container.validators:
        found |= _classes_in(validator) if isinstance(validator, ValidatorContainer) else {type(validator)}
    return found


def test_the_classes_listed_as_refining_match_require_nodevisitor_match_first() -> None:
    classes = set().union(*(_classes_in(_validator(kind)[0]) for kind in CertificateKind))
    defining = {
        f"{klass.__module__}.{klass.__qualname__}": klass
        for cls in classes
        for klass in cls.__mro__
        if klass is not NodeVisitor and "match" in vars(klass) and issubclass(klass, NodeVisitor)
    }
    for name in REFINING_MATCH:
        assert name in defining, f"{name} is listed but no validator Candor runs defines it"
        assert _requires_super_match_first(vars(defining[name])["match"]), name
    # every override Candor runs is listed, so none falls back to being asked at every node
    assert set(defining) <= REFINING_MATCH


def test_the_source_check_recognises_a_match_that_does_not_require_super_first() -> None:
    class Loose(NodeVisitor):
        def match(self, node: PDUNode) -> bool:
            return node.name == "x" or super().match(node)

    assert not _requires_super_match_first(Loose.match)
