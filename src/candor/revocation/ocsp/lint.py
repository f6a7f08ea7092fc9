"""pkilint's RFC 6960 validators on OCSP responses (BR 4.3.1.2 and 1.6.1 "Linting" cover OCSP responses).

Every response one builder makes has the same shape (only the serial, the times and the signature differ),
so the first response of each status per builder is linted before any of that batch is stored or published;
an error fails closed, and the signed bytes are never served.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from candor.errors import CandorError, ErrorKind

_lock = threading.Lock()


@functools.cache
def _validator() -> Any:
    from pkilint import pkix
    from pkilint.pkix import extension, name, ocsp

    return ocsp.create_pkix_ocsp_response_validator_container(
        [
            ocsp.create_response_decoder(),
            pkix.create_attribute_decoder(name.ATTRIBUTE_TYPE_MAPPINGS),
            pkix.create_extension_decoder(extension.EXTENSION_MAPPINGS),
        ],
        [],
    )


def response_findings(der: bytes) -> list[tuple[str, str]]:
    """(severity, code) of every pkilint finding on the DER OCSPResponse."""
    try:
        from pkilint import loader

        with _lock:
            container = _validator()
        document = loader.RFC6960OCSPResponseDocumentLoader().load_der_document(der, "ocsp-response")
        results = container.validate(document.root)
    except Exception as exc:  # the linter failed to run: fail closed
        raise CandorError(ErrorKind.LINT, f"pkilint could not lint the OCSP response: {exc!r}") from None
    return [(d.finding.severity.name, d.finding.code) for r in results for d in r.finding_descriptions]


def require_clean_response(der: bytes, *, what: str) -> None:
    errors = [code for severity, code in response_findings(der) if severity in ("FATAL", "ERROR")]
    if errors:
        raise CandorError(ErrorKind.LINT, f"{what}: pkilint reports {len(errors)} error(s): {'; '.join(errors[:5])}")
