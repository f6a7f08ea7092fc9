"""Checks before a CRL is published; any failure publishes nothing (fail closed; BR 4.3.1.2 "Linting" covers
CRLs).

1. pkilint (RFC 5280 CRL validators plus the CA/B Forum ones: validity period at most 10 days, reason-code
   allowlist), on the whole CRL up to ``FULL_LINT_MAX`` entries; above that, on a CRL of the same header with a
   sample of the entries (pkilint costs about 0.3 ms an entry), signed by a throwaway key. pkilint's CA/B Forum
   CRL profile ("lint_crl -p BR") is the TLS BRs'; it has none for the Code Signing BRs that bind a time-stamping
   CA's CRL, so that one is linted with the RFC 5280 validators alone ("-p PKIX"). The CSBR's limits are met by
   construction and by the checks below: nextUpdate within 10 days (CSBR: 12 months), the same reasons, never
   certificateHold.
2. Candor's own check of every entry: serial in the shard, reason allowed for a subscriber certificate (BR 7.2.2),
   revocation date not after thisUpdate, strictly ascending serials (so no duplicates).
3. The signed CRL parsed back by cryptography: signature, issuer, times, IDP (critical, fullName byte-equal to
   the URL, onlyContainsUserCerts), CRLNumber, AKI and the number of entries.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from candor.errors import CandorError, ErrorKind
from candor.revocation.crl import der
from candor.revocation.crl.build import CrlHeader, Entry, Skeleton, assemble, throwaway_sign

FULL_LINT_MAX = 10_000
SAMPLE_SIZE = 1_000
# BR 7.2.2: the reasons a subscriber certificate's CRL entry may carry (0, unspecified, as no reasonCode).
ALLOWED_REASONS = frozenset({0, 1, 3, 4, 5, 9})
_lock = threading.Lock()


def check_entries(entries: Sequence[Entry], *, shard: int, shards: int, this_update: bytes) -> None:
    """Candor's own check of every entry (the part of the checks that scales to a million entries)."""
    limit = _comparable(this_update)
    previous: tuple[int, bytes] = (0, b"")
    for entry in entries:
        serial = entry.serial
        if not serial or serial[0] >= 0x80 or (len(serial) > 1 and serial[0] == 0 and serial[1] < 0x80):
            raise CandorError(ErrorKind.LINT, f"CRL entry {serial.hex()}: not a minimal positive DER INTEGER")
        if int.from_bytes(serial, "big") % shards != shard:
            raise CandorError(ErrorKind.LINT, f"CRL entry {serial.hex()}: not in shard {shard} of {shards}")
        if entry.reason not in ALLOWED_REASONS:
            raise CandorError(ErrorKind.LINT, f"BR 7.2.2: CRL entry {serial.hex()}: reason {entry.reason}")
        if _comparable(entry.revoked_at) > limit:
            raise CandorError(ErrorKind.LINT, f"CRL entry {serial.hex()}: revoked after thisUpdate")
        key = (len(serial), serial)
        if key <= previous:
            raise CandorError(ErrorKind.LINT, f"CRL entry {serial.hex()}: duplicate or out of order")
        previous = key


def _comparable(time: bytes) -> bytes:
    """A DER UTCTime or GeneralizedTime as 14 digits YYYYMMDDHHMMSS (RFC 5280 4.1.2.5.1: YY < 50 is 20YY)."""
    if time[:2] == b"\x17\x0d":
        return (b"20" if time[2:4] < b"50" else b"19") + time[2:14]
    if time[:2] == b"\x18\x0f":
        return time[2:16]
    raise CandorError(ErrorKind.LINT, "a CRL time is neither UTCTime nor GeneralizedTime in whole seconds")


def lint(skeleton: Skeleton, header: CrlHeader, crl_der: bytes, entries: Sequence[Entry]) -> int:
    """pkilint on the CRL itself, or on a same-header sample when it is large; return the entries linted."""
    profile = "BR" if header.kind == "tls" else "PKIX"
    if len(entries) <= FULL_LINT_MAX:
        _require_clean(crl_der, profile)
        return len(entries)
    step = len(entries) / SAMPLE_SIZE
    picked = {int(i * step) for i in range(SAMPLE_SIZE)} | {len(entries) - 1}
    by_reason = {e.reason: i for i, e in enumerate(entries)}  # one entry of every reason present
    sample = [entries[i] for i in sorted(picked | set(by_reason.values()))]
    tbs = assemble(skeleton, sample)
    _require_clean(throwaway_sign(skeleton, tbs, header.algorithm), profile)
    return len(sample)


@functools.cache
def _validator(profile: str) -> Any:
    from pkilint import pkix
    from pkilint.cabf import cabf_crl
    from pkilint.pkix import crl, extension, name

    crl_type = crl.CertificateRevocationListType.CRL
    cabf = profile == "BR"  # the CA/B Forum TLS validators, as lint_crl adds them for -p BR
    validity = [cabf_crl.create_validity_period_validator(crl_type)] if cabf else []
    reasons = [cabf_crl.CabfCrlReasonCodeAllowlistValidator(crl_type)] if cabf else []
    return crl.create_pkix_crl_validator_container(
        [
            pkix.create_attribute_decoder(name.ATTRIBUTE_TYPE_MAPPINGS),
            pkix.create_extension_decoder(extension.EXTENSION_MAPPINGS),
        ],
        [
            crl.create_issuer_validator_container([]),
            crl.create_validity_validator_container(validity),
            crl.create_extensions_validator_container([]),
            *reasons,
        ],
    )


def findings(crl_der: bytes, profile: str = "BR") -> list[str]:
    """pkilint's ERROR, FATAL and WARNING findings on *crl_der*, as ``lint_crl -t CRL -p PROFILE``: "BR" (the CA/B
    Forum TLS profile on top of RFC 5280) or "PKIX" (RFC 5280 alone)."""
    if profile not in ("BR", "PKIX"):
        raise CandorError(ErrorKind.INTERNAL, f"pkilint has no CRL profile {profile!r}")
    try:
        from pkilint import loader

        with _lock:
            validator = _validator(profile)
        document = loader.RFC5280CertificateListDocumentLoader().load_der_document(crl_der, "crl")
        results = validator.validate(document.root)
        return [
            f"{d.finding.severity.name} {d.finding.code} at {r.node.path}" + (f": {d.message}" if d.message else "")
            for r in results
            for d in r.finding_descriptions
            if d.finding.severity.name in ("FATAL", "ERROR", "WARNING")
        ]
    except Exception as exc:  # the linter failed to run: fail closed
        raise CandorError(ErrorKind.LINT, f"pkilint could not lint the CRL: {exc!r}") from None


def _require_clean(crl_der: bytes, profile: str) -> None:
    found = findings(crl_der, profile)
    if found:
        raise CandorError(ErrorKind.LINT, f"pkilint reports {len(found)} finding(s) on the CRL: {'; '.join(found[:5])}")


def check_signed(
    crl_der: bytes,
    header: CrlHeader,
    entries: Sequence[Entry],
    *,
    signed_by_issuer: bool = True,
    checked_tbs: bytes | None = None,
) -> x509.CertificateRevocationList:
    """Parse the CRL back with cryptography and check what it says against what was meant (and, unless it is
    the throwaway-signed draft, its signature with the issuer certificate's key). With *checked_tbs*, the TBS of
    a draft that passed these checks: a CRL whose TBS is that one byte for byte says what the draft said, and
    only its parse and signature are checked again (counting a large CRL's entries is most of the cost)."""
    try:
        crl = x509.load_der_x509_crl(crl_der)
    except ValueError as exc:
        raise CandorError(ErrorKind.LINT, f"the assembled CRL does not parse: {exc}") from None
    public_key = header.issuer.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise CandorError(ErrorKind.KEY, "the issuer's key is neither RSA nor ECDSA")
    if signed_by_issuer and not crl.is_signature_valid(public_key):
        raise CandorError(ErrorKind.KEY, "the key store produced a CRL signature that does not verify")
    if checked_tbs is not None and crl.tbs_certlist_bytes == checked_tbs:
        return crl
    problems = []
    if crl.issuer.public_bytes() != header.issuer.subject.public_bytes():
        problems.append("BR 7.2.1: issuer differs from the issuer certificate's subject")
    if crl.last_update_utc != header.this_update or crl.next_update_utc != header.next_update:
        problems.append("thisUpdate/nextUpdate differ from the header")
    extensions = crl.extensions
    try:
        idp = extensions.get_extension_for_class(x509.IssuingDistributionPoint)
        number = extensions.get_extension_for_class(x509.CRLNumber)
        extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    except x509.ExtensionNotFound as exc:
        raise CandorError(ErrorKind.LINT, f"the CRL lacks an extension: {exc}") from None
    url = der.tlv(0x86, header.url.encode("ascii"))  # [6] uniformResourceIdentifier, IA5String octets
    if (
        not idp.critical
        or url not in idp.value.public_bytes()
        or idp.value.full_name != [x509.UniformResourceIdentifier(header.url)]
    ):
        problems.append("BR 7.2.2.1: the IDP is not critical or its fullName is not exactly the shard's URL")
    if not idp.value.only_contains_user_certs or idp.value.indirect_crl or idp.value.only_contains_ca_certs:
        problems.append("RFC 5280 5.2.5: the IDP must say onlyContainsUserCerts, and nothing indirect")
    if number.critical or number.value.crl_number != header.number:
        problems.append("RFC 5280 5.2.3: CRLNumber differs or is critical")
    if der.children(crl.tbs_certlist_bytes)[0] != b"\x02\x01\x01":
        problems.append("RFC 5280 5.1.2.1: not a v2 CRL")
    if len(crl) != len(entries):
        problems.append(f"{len(crl)} entries where {len(entries)} were meant")
    if entries:
        for entry in (entries[0], entries[-1]):
            if crl.get_revoked_certificate_by_serial_number(int.from_bytes(entry.serial, "big")) is None:
                problems.append(f"entry {entry.serial.hex()} is missing")
    if problems:
        raise CandorError(ErrorKind.LINT, "the signed CRL fails its checks: " + "; ".join(problems))
    return crl
