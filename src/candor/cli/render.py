"""Text renderings for the CLI."""

from __future__ import annotations

import base64
import hashlib

from sqlalchemy.orm import Session

from candor.storage import repositories
from candor.storage.models import Issuer, KeyRecord


def _fingerprint(hex_digest: str) -> str:
    return ":".join(hex_digest[i : i + 2] for i in range(0, len(hex_digest), 2)).upper()


def _issuer_lines(issuer: Issuer, prefix: str) -> list[str]:
    from cryptography import x509

    certificate = x509.load_der_x509_certificate(issuer.certificate_der)
    key = issuer.key
    return [
        f"{issuer.name} [{issuer.kind}{', private' if issuer.private else ''}] {certificate.subject.rfc4514_string()}",
        f"{prefix}  SHA-256 {_fingerprint(issuer.fingerprint_sha256)}",
        f"{prefix}  valid {issuer.not_before:%Y-%m-%dT%H:%M:%SZ} .. {issuer.not_after:%Y-%m-%dT%H:%M:%SZ}"
        f"  serial {certificate.serial_number:x}",
        f"{prefix}  key {key.label}: {key.algorithm} in store {key.store!r} ({key.backend})",
    ]


def render_hierarchy(session: Session) -> str:
    issuers = repositories.list_issuers(session)
    if not issuers:
        return "no CA hierarchy yet (run 'candor ceremony --config FILE')"
    children: dict[int | None, list[Issuer]] = {}
    for issuer in issuers:
        children.setdefault(issuer.parent_id, []).append(issuer)
    keys = list(session.query(KeyRecord).order_by(KeyRecord.id))
    responders = [k for k in keys if k.purpose == "ocsp-responder"]
    lines: list[str] = []

    def walk(issuer: Issuer, indent: str, last: bool, top: bool) -> None:
        branch = "" if top else ("└─ " if last else "├─ ")
        cont = "" if top else ("   " if last else "│  ")
        block = _issuer_lines(issuer, indent + cont)
        lines.append(indent + branch + block[0])
        lines.extend(block[1:])
        for responder in responders:
            if responder.label.startswith(f"{issuer.name}-ocsp-"):
                lines.append(f"{indent}{cont}  OCSP responder key {responder.label}: {responder.algorithm}")
        kids = children.get(issuer.id, [])
        for index, child in enumerate(kids):
            walk(child, indent + cont, index == len(kids) - 1, False)

    for root in children.get(None, []):
        walk(root, "", True, True)
    logs = [k for k in keys if k.purpose == "ct-log"]
    if logs:
        lines.append("CT log keys:")
        for log in logs:
            log_id = base64.b64encode(hashlib.sha256(log.public_key_der).digest()).decode("ascii")
            lines.append(f"  {log.label}: {log.algorithm} in store {log.store!r}, log ID {log_id}")
    return "\n".join(lines)


def render_certificate(data: bytes) -> str:
    """A certificate's main fields and its pkilint findings (the kind detected from its contents)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding

    from candor.errors import CandorError, ErrorKind
    from candor.lint import lint_detected

    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            certificate = x509.load_pem_x509_certificate(data)
        else:
            certificate = x509.load_der_x509_certificate(data)
    except ValueError:
        raise CandorError(ErrorKind.POLICY, "not an X.509 certificate (PEM or DER)") from None
    der = certificate.public_bytes(Encoding.DER)
    lines = [
        f"subject     {certificate.subject.rfc4514_string() or '(empty)'}",
        f"issuer      {certificate.issuer.rfc4514_string()}",
        f"serial      {certificate.serial_number:x}",
        f"validity    {certificate.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} .. "
        f"{certificate.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}",
        f"SHA-256     {_fingerprint(certificate.fingerprint(hashes.SHA256()).hex())}",
    ]
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        lines.append("names       " + ", ".join(str(n.value) for n in names))
    except x509.ExtensionNotFound:
        pass
    for extension in certificate.extensions:
        name = getattr(extension.oid, "_name", extension.oid.dotted_string)
        lines.append(f"extension   {name}{' (critical)' if extension.critical else ''}")
    report = lint_detected(der)
    lines.append(f"pkilint     {report.kind}: {len(report.errors)} error(s), {len(report.warnings)} warning(s)")
    lines.extend(f"  {finding}" for finding in report.findings)
    return "\n".join(lines)
