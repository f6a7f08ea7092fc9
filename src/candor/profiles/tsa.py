"""The Timestamp certificate of a TSA unit (CA/B Forum Code Signing BR 7.1.2.3; RFC 3161 2.3), as a pure function,
and the same rules as a check of a certificate already issued (the TSA refuses to start with a unit that fails it).

Fields: keyUsage digitalSignature only, critical (CSBR 7.1.2.3 e); extKeyUsage id-kp-timeStamping only,
critical (CSBR 7.1.2.3 f, RFC 3161 2.3); certificatePolicies with the CA/B Forum reserved Timestamp policy
2.23.140.1.4.2 (CSBR 7.1.2.3 a, 7.1.6.1): the TSA's own time-stamp policy is a property of its tokens
(TSTInfo.policy), not of its certificate, so it is not repeated here (CSBR 7.1.2.4: no data without a reason);
cRLDistributionPoints and authorityInformationAccess caIssuers over http (CSBR 7.1.2.3 b, c); AKI (g); no
basicConstraints (d: optional) and no SKI. Keys: RSA of at least 3072 bits or ECDSA P-256, P-384, P-521 (CSBR
6.1.5.2). Validity at most 135 months, and the key is used at most 15 months after notBefore (CSBR 6.3.2).
"""

from __future__ import annotations

import calendar
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, ExtensionOID

from candor.clock import ensure_utc
from candor.errors import CandorError, ErrorKind
from candor.policy.algorithms import CAPublicKey
from candor.profiles.ca import POLICY_TIMESTAMPING, IssuerInfo, _distribution
from candor.profiles.template import CertificateTemplate, ext, key_usage

MAX_VALIDITY_MONTHS = 135  # CSBR 6.3.2
KEY_USAGE_MONTHS = 15  # CSBR 6.3.2: the private key is not used more than 15 months after notBefore
MIN_RSA_BITS = 3072  # CSBR 6.1.5.2
CURVES = ("secp256r1", "secp384r1", "secp521r1")  # CSBR 6.1.5.2: P-256, P-384, P-521


def add_months(moment: datetime, months: int) -> datetime:
    """*moment* plus calendar months, the day cut to the last of a shorter month (2026-01-31 + 1 = 2026-02-28)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def usable_until(not_before: datetime, not_after: datetime) -> datetime:
    """The end of a unit key's usage period: 15 months after notBefore, never after notAfter (CSBR 6.3.2)."""
    return min(add_months(ensure_utc(not_before), KEY_USAGE_MONTHS), ensure_utc(not_after))


def key_problem(public_key: object) -> str | None:
    """Why CSBR 6.1.5.2 refuses *public_key* for a Timestamp certificate, or None."""
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < MIN_RSA_BITS:
            return f"an RSA-{public_key.key_size} key (CSBR 6.1.5.2: RSA keys are at least {MIN_RSA_BITS} bits)"
        return None
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in CURVES:
            return f"an ECDSA key on {public_key.curve.name} (CSBR 6.1.5.2: P-256, P-384 or P-521)"
        return None
    return f"a {type(public_key).__name__} (CSBR 6.1.5.2: RSA of 3072 bits or more, or ECDSA P-256/384/521)"


def timestamp_certificate(
    *,
    subject: x509.Name,
    public_key: CAPublicKey,
    serial: int,
    not_before: datetime,
    not_after: datetime,
    issuer: IssuerInfo,
) -> CertificateTemplate:
    """A TSA unit's Timestamp certificate, issued by the time-stamping sub-CA *issuer*. *not_before* may lie in the
    future: a unit certified ahead of a rotation starts signing then."""
    start, end = ensure_utc(not_before).replace(microsecond=0), ensure_utc(not_after).replace(microsecond=0)
    problem = key_problem(public_key)
    if problem is not None:
        raise CandorError(ErrorKind.POLICY, f"a Timestamp certificate cannot certify {problem}")
    if end <= start:
        raise CandorError(ErrorKind.POLICY, "a Timestamp certificate's notAfter must follow its notBefore")
    if end > add_months(start, MAX_VALIDITY_MONTHS):
        raise CandorError(
            ErrorKind.POLICY, f"CSBR 6.3.2: a Timestamp certificate is valid {MAX_VALIDITY_MONTHS} months at most"
        )
    if end > issuer.not_after:
        raise CandorError(
            ErrorKind.POLICY,
            f"Timestamp certificate: notAfter {end:%Y-%m-%d} is after its issuer's {issuer.not_after:%Y-%m-%d}",
        )
    extensions = [
        key_usage(digital_signature=True),
        ext(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True),
        ext(x509.CertificatePolicies([x509.PolicyInformation(POLICY_TIMESTAMPING, None)]), critical=False),
        *_distribution(issuer),
        ext(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key), critical=False),
    ]
    return CertificateTemplate(
        subject=subject,
        issuer=issuer.name,
        public_key=public_key,
        serial=serial,
        not_before=start,
        not_after=end,
        extensions=tuple(extensions),
    )


def timestamp_certificate_problems(certificate: x509.Certificate) -> list[str]:
    """What makes *certificate* unfit to sign time-stamp tokens (each naming its rule); empty when it is fit."""
    problems: list[str] = []
    extensions = {e.oid: e for e in certificate.extensions}
    eku = extensions.get(ExtensionOID.EXTENDED_KEY_USAGE)
    if eku is None:
        problems.append("no extKeyUsage (RFC 3161 2.3, CSBR 7.1.2.3 f)")
    else:
        if not eku.critical:
            problems.append("extKeyUsage is not critical (RFC 3161 2.3, CSBR 7.1.2.3 f)")
        purposes = list(eku.value)
        if purposes != [ExtendedKeyUsageOID.TIME_STAMPING]:
            listed = ", ".join(p.dotted_string for p in purposes)
            problems.append(f"extKeyUsage holds {listed}, not only id-kp-timeStamping (RFC 3161 2.3, CSBR 7.1.2.3 f)")
    ku = extensions.get(ExtensionOID.KEY_USAGE)
    if ku is None or not ku.critical:
        problems.append("keyUsage is missing or not critical (CSBR 7.1.2.3 e)")
    elif not ku.value.digital_signature or ku.value.key_cert_sign or ku.value.crl_sign:
        problems.append("keyUsage must have digitalSignature and neither keyCertSign nor cRLSign (CSBR 7.1.2.3 e)")
    basic = extensions.get(ExtensionOID.BASIC_CONSTRAINTS)
    if basic is not None and basic.value.ca:
        problems.append("basicConstraints cA is true (CSBR 7.1.2.3 d)")
    for oid, rule in (
        (ExtensionOID.CERTIFICATE_POLICIES, "certificatePolicies (CSBR 7.1.2.3 a)"),
        (ExtensionOID.CRL_DISTRIBUTION_POINTS, "cRLDistributionPoints (CSBR 7.1.2.3 b)"),
        (ExtensionOID.AUTHORITY_INFORMATION_ACCESS, "authorityInformationAccess (CSBR 7.1.2.3 c)"),
        (ExtensionOID.AUTHORITY_KEY_IDENTIFIER, "authorityKeyIdentifier (CSBR 7.1.2.3 g)"),
    ):
        if oid not in extensions:
            problems.append(f"no {rule}")
        elif extensions[oid].critical:
            problems.append(f"{rule.split(' ')[0]} is critical (CSBR 7.1.2.3)")
    aia = extensions.get(ExtensionOID.AUTHORITY_INFORMATION_ACCESS)
    if aia is not None and not any(d.access_method == AuthorityInformationAccessOID.CA_ISSUERS for d in aia.value):
        problems.append("authorityInformationAccess has no caIssuers URL (CSBR 7.1.2.3 c)")
    problem = key_problem(certificate.public_key())
    if problem is not None:
        problems.append(f"it certifies {problem}")
    hash_algorithm = certificate.signature_hash_algorithm
    if hash_algorithm is None or hash_algorithm.name not in ("sha256", "sha384", "sha512"):
        problems.append("it is not signed with SHA-256, SHA-384 or SHA-512 (CSBR 7.1.3.2)")
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if end > add_months(start, MAX_VALIDITY_MONTHS):
        problems.append(f"it is valid longer than {MAX_VALIDITY_MONTHS} months (CSBR 6.3.2)")
    return problems
