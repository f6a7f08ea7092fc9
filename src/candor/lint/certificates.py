"""Lint certificates with pkilint: the CA/Browser Forum TLS validators, or plain RFC 5280 where no CA/B Forum
TLS profile applies (the time-stamping hierarchy)."""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from candor.errors import CandorError, ErrorKind
from candor.lint.walk import IndexedWalk


class CertificateKind(StrEnum):
    """Which pkilint validator set judges a certificate."""

    ROOT_CA = "root-ca"  # BR 7.1.2.1
    TLS_CA = "tls-ca"  # BR 7.1.2.6 (internal, unconstrained)
    OCSP_RESPONDER = "ocsp-responder"  # BR 7.1.2.8
    DV_CERTIFICATE = "dv-certificate"  # BR 7.1.2.7
    DV_PRECERTIFICATE = "dv-precertificate"  # BR 7.1.2.9
    OV_CERTIFICATE = "ov-certificate"  # BR 7.1.2.7.4
    OV_PRECERTIFICATE = "ov-precertificate"  # BR 7.1.2.9
    EV_CERTIFICATE = "ev-certificate"  # BR 7.1.2.7.5, EV Guidelines 7.1
    EV_PRECERTIFICATE = "ev-precertificate"  # BR 7.1.2.9
    PKIX = "pkix"  # RFC 5280 only (e.g. the time-stamping sub-CA and TSA units)


_SERVERAUTH_TYPES = {
    CertificateKind.ROOT_CA: "ROOT_CA",
    CertificateKind.TLS_CA: "INTERNAL_UNCONSTRAINED_TLS_CA",
    CertificateKind.OCSP_RESPONDER: "OCSP_RESPONDER",
    CertificateKind.DV_CERTIFICATE: "DV_FINAL_CERTIFICATE",
    CertificateKind.DV_PRECERTIFICATE: "DV_PRE_CERTIFICATE",
    CertificateKind.OV_CERTIFICATE: "OV_FINAL_CERTIFICATE",
    CertificateKind.OV_PRECERTIFICATE: "OV_PRE_CERTIFICATE",
    CertificateKind.EV_CERTIFICATE: "EV_FINAL_CERTIFICATE",
    CertificateKind.EV_PRECERTIFICATE: "EV_PRE_CERTIFICATE",
}

_SUBSCRIBER_KINDS = {
    ("dv", False): CertificateKind.DV_CERTIFICATE,
    ("dv", True): CertificateKind.DV_PRECERTIFICATE,
    ("ov", False): CertificateKind.OV_CERTIFICATE,
    ("ov", True): CertificateKind.OV_PRECERTIFICATE,
    ("ev", False): CertificateKind.EV_CERTIFICATE,
    ("ev", True): CertificateKind.EV_PRECERTIFICATE,
}


def kind_for(level: str, precertificate: bool) -> CertificateKind:
    """The lint kind of a subscriber TLS certificate of validation *level* ("dv", "ov" or "ev")."""
    try:
        return _SUBSCRIBER_KINDS[(level, precertificate)]
    except KeyError:
        raise CandorError(ErrorKind.POLICY, f"no lint kind for a {level!r} subscriber certificate") from None


@dataclass(frozen=True)
class Finding:
    severity: str  # FATAL, ERROR, WARNING, NOTICE, INFO (pkilint's, RFC 2119 flavoured)
    code: str  # e.g. cabf.serverauth.root.unexpected_extension
    path: str  # where in the certificate
    message: str | None = None

    def __str__(self) -> str:
        detail = f": {self.message}" if self.message else ""
        return f"{self.severity} {self.code} at {self.path}{detail}"


@dataclass(frozen=True)
class LintReport:
    kind: CertificateKind
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity in ("FATAL", "ERROR"))

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "WARNING")

    @property
    def ok(self) -> bool:
        return not self.errors


_build_lock = threading.Lock()


@functools.cache
def _validator(kind: CertificateKind) -> tuple[Any, Any]:
    """(validator container, finding filters) for *kind*, built once per process (pkilint's own objects)."""
    from pkilint.cabf import serverauth
    from pkilint.cabf.serverauth import serverauth_constants
    from pkilint.pkix import certificate, extension, name

    if kind is CertificateKind.PKIX:
        container = certificate.create_pkix_certificate_validator_container(
            certificate.create_decoding_validators(name.ATTRIBUTE_TYPE_MAPPINGS, extension.EXTENSION_MAPPINGS),
            [
                certificate.create_issuer_validator_container([]),
                certificate.create_validity_validator_container(),
                certificate.create_subject_validator_container([]),
                certificate.create_extensions_validator_container([]),
                certificate.create_spki_validator_container([]),
            ],
        )
        return container, []
    cert_type = serverauth_constants.CertificateType[_SERVERAUTH_TYPES[kind]]
    container = certificate.create_pkix_certificate_validator_container(
        serverauth.create_decoding_validators(), serverauth.create_validators(cert_type)
    )
    return container, serverauth.create_serverauth_finding_filters(cert_type)


@functools.cache
def _walk(kind: CertificateKind) -> IndexedWalk:
    """*kind*'s container walked with indexes (:mod:`.walk`): pkilint's results, less of its matching."""
    return IndexedWalk(_validator(kind)[0])


def prepare_linter(kind: CertificateKind) -> None:
    """Build *kind*'s validators now (pkilint's imports and validator set: ~1.5 s of CPU here, once per process)
    rather than in the first lint of that kind."""
    with _build_lock:
        _walk(kind)


def lint_certificate(der: bytes, kind: CertificateKind, *, indexed: bool = True) -> LintReport:
    """Run pkilint on *der*. Any failure of the linter itself is a ``LINT`` error: nothing gets signed.

    *indexed*: the validators run through :class:`~candor.lint.walk.IndexedWalk` (the same results for a third
    less CPU); off, through pkilint's own container walk (the independent re-lint of ``tests/zz_relint`` does
    both and compares)."""
    try:
        from pkilint import finding_filter, loader

        with _build_lock:
            container, filters = _validator(kind)
            walk = _walk(kind) if indexed else container
        document = loader.RFC5280CertificateDocumentLoader().load_der_document(der, "certificate")
        results = walk.validate(document.root)
        if filters:
            results, _ = finding_filter.filter_results(filters, results)
        findings = tuple(
            Finding(
                severity=description.finding.severity.name,
                code=description.finding.code,
                path=str(result.node.path),
                message=description.message,
            )
            for result in results
            for description in result.finding_descriptions
        )
    except CandorError:
        raise
    except Exception as exc:  # the linter failed to run: fail closed
        raise CandorError(ErrorKind.LINT, f"pkilint could not lint the {kind} certificate: {exc!r}") from None
    return LintReport(kind=kind, findings=findings)


# A private hierarchy (a local test PKI, an enterprise CA) has AIA and CRL URLs on loopback or internal hosts,
# and certifies internal names, which the CA/B Forum validators rightly call internal. Only these findings,
# only inside those extensions, and only for an issuer marked private, are accepted.
LOCAL_URL_FINDINGS = frozenset({"cabf.internal_domain_name", "cabf.internal_ip_address"})
_URL_EXTENSION_PATHS = ("cRLDistributionPoints", "authorityInfoAccessSyntax", "subjectAltName")


def is_local_url_finding(finding: Finding) -> bool:
    return finding.code in LOCAL_URL_FINDINGS and any(p in finding.path for p in _URL_EXTENSION_PATHS)


def require_clean(der: bytes, kind: CertificateKind, *, what: str, allow_local_urls: bool = False) -> LintReport:
    """Lint and refuse on any error; the report (with warnings) is returned for the audit record."""
    report = lint_certificate(der, kind)
    errors = [f for f in report.errors if not (allow_local_urls and is_local_url_finding(f))]
    if errors:
        listed = "; ".join(str(f) for f in errors[:5])
        raise CandorError(ErrorKind.LINT, f"{what}: pkilint reports {len(errors)} error(s): {listed}")
    return report


def lint_detected(der: bytes, *, indexed: bool = True) -> LintReport:
    """Lint with the validators for the type pkilint itself detects from the certificate's contents (an
    independent second opinion: it does not trust the kind Candor meant to issue)."""
    try:
        from pkilint import loader
        from pkilint.cabf import serverauth

        document = loader.RFC5280CertificateDocumentLoader().load_der_document(der, "certificate")
        detected = serverauth.determine_certificate_type(document)
    except Exception as exc:  # the linter failed to run: fail closed
        raise CandorError(ErrorKind.LINT, f"pkilint could not classify the certificate: {exc!r}") from None
    kind = _KIND_BY_SERVERAUTH_TYPE.get(detected.name)
    if kind is None:
        raise CandorError(
            ErrorKind.LINT, f"pkilint classifies the certificate as {detected.name}, not a type Candor issues"
        )
    return lint_certificate(der, kind, indexed=indexed)


_KIND_BY_SERVERAUTH_TYPE = {name: kind for kind, name in _SERVERAUTH_TYPES.items()}
