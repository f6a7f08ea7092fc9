"""Certifying a TSA unit: a new time-stamping key and its Timestamp certificate from the time-stamping sub-CA.

Made as the ceremony makes CA certificates: the key is generated in the chosen key store and recorded at once
(no key is ever unaccounted for); the certificate is the :func:`candor.profiles.timestamp_certificate`
template, linted by pkilint, signed through a single-use token by the sub-CA's key and checked against the
sub-CA's certificate; it is stored under the sub-CA's serials (so its CRL covers it) and published in
``public/tsa/``. Only this module touches the sub-CA's key: the serving processes need the unit keys only.

A unit may be certified ahead of a rotation: its certificate's notBefore is the signing time (never forward-dated,
WS-08a), and *signs_from*, a later moment within its key usage period, is when the service switches to it,
without a restart. Key algorithms: RSA-3072, RSA-4096, ECDSA P-256, P-384
(CSBR 6.1.5.2 also allows P-521, which Candor's key stores do not generate; RSA-2048 is refused).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from candor import signing
from candor.audit import AuditLog
from candor.clock import Clock, ensure_utc
from candor.errors import CandorError, ErrorKind
from candor.files import write_atomically
from candor.keys import CAPrivateKey, CAPublicKey, KeyAlgorithm, KeyStores
from candor.lint import CertificateKind
from candor.profiles import IssuerInfo, timestamp_certificate
from candor.profiles.tsa import MAX_VALIDITY_MONTHS, add_months, key_problem, usable_until
from candor.revocation.crl import shard_url
from candor.storage import Database, repositories
from candor.storage.models import Issuer, KeyRecord
from candor.storage.models_tsa import TsaUnit

UNIT_ALGORITHMS = (KeyAlgorithm.ECDSA_P256, KeyAlgorithm.ECDSA_P384, KeyAlgorithm.RSA_3072, KeyAlgorithm.RSA_4096)


@dataclass(frozen=True)
class CertifiedUnit:
    name: str
    algorithm: str
    store: str
    not_before: datetime
    signs_from: datetime
    usable_until: datetime
    not_after: datetime
    serial_hex: str
    certificate_path: Path


def unit_algorithm(value: str) -> KeyAlgorithm:
    """A key algorithm a TSA unit may use (CSBR 6.1.5.2), or ``ErrorKind.CONFIG`` naming the allowed ones."""
    allowed = ", ".join(a.value for a in UNIT_ALGORITHMS)
    try:
        algorithm = KeyAlgorithm(value.strip().lower())
    except ValueError:
        raise CandorError(
            ErrorKind.CONFIG, f"TSA unit key algorithm {value!r} is unknown (allowed: {allowed})"
        ) from None
    if algorithm not in UNIT_ALGORITHMS:
        raise CandorError(
            ErrorKind.CONFIG,
            f"TSA unit key algorithm {algorithm.value} is refused: CSBR 6.1.5.2 requires RSA of 3072 bits or more, "
            f"or ECDSA P-256/384/521 (allowed here: {allowed})",
        )
    return algorithm


class UnitCertifier:
    def __init__(
        self,
        db: Database,
        stores: KeyStores,
        clock: Clock,
        *,
        issuer: str,
        base_url: str,
        public_dir: Path,
        actor: str,
    ) -> None:
        self.db, self.stores, self.clock = db, stores, clock
        self.issuer_name, self.base_url, self.public_dir, self.actor = issuer, base_url, public_dir, actor
        self.audit = AuditLog(clock)

    def certify(
        self,
        *,
        store: str,
        algorithm: KeyAlgorithm,
        signs_from: datetime | None = None,
        validity_months: int = MAX_VALIDITY_MONTHS,
    ) -> CertifiedUnit:
        """A new unit whose certificate starts now and lasts *validity_months*, cut to the sub-CA's own notAfter,
        and which signs from *signs_from* (now by default) until the end of its key usage period."""
        algorithm = unit_algorithm(algorithm.value)
        now = ensure_utc(self.clock.now()).replace(microsecond=0)
        start = now  # notBefore is the signing time: never backdated, never forward-dated (WS-08a)
        takes_over = ensure_utc(signs_from).replace(microsecond=0) if signs_from is not None else now
        if not 1 <= validity_months <= MAX_VALIDITY_MONTHS:
            raise CandorError(
                ErrorKind.CONFIG, f"CSBR 6.3.2: a Timestamp certificate is valid 1 to {MAX_VALIDITY_MONTHS} months"
            )
        unit_store = self.stores.get(store)  # a wrong passphrase or PIN stops us before any key exists
        with self.db.session() as session:
            issuer = self._issuer(session)
            issuer_not_after = issuer.not_after
            # the sub-CA's key too: a store it cannot be loaded from must not leave a generated unit key behind
            issuer_key = self.stores.get(issuer.key.store).load(issuer.key.handle, KeyAlgorithm(issuer.key.algorithm))
            name = self._next_name(session, issuer)
        end = min(add_months(start, validity_months), issuer_not_after)
        if usable_until(start, end) <= start:
            raise CandorError(ErrorKind.POLICY, f"{self.issuer_name} expires before a unit starting now could sign")
        if not start <= takes_over < usable_until(start, end):
            raise CandorError(
                ErrorKind.CONFIG,
                "a unit takes over between now and the end of its key usage period (CSBR 6.3.2: 15 months from now)",
            )
        generated = unit_store.generate(name, algorithm)
        spki = generated.public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        problem = key_problem(generated.public_key)
        if problem is not None:  # a key store that made something else than asked
            raise CandorError(ErrorKind.KEY, f"the key store made {problem}")
        with self.db.session() as session:
            key = repositories.add_key(
                session, label=name, store=store, backend=unit_store.backend_type, algorithm=algorithm.value,
                handle=generated.handle, public_key_der=spki, purpose="tsa-unit", created_at=now,
            )  # fmt: skip
            self.audit.record(
                session, actor=self.actor, action="key.generate", subject=name, outcome="success",
                details={"store": store, "algorithm": algorithm.value, "purpose": "tsa-unit",
                         "spki_sha256": hashlib.sha256(spki).hexdigest(),
                         "location": unit_store.protection(generated.handle).location},
            )  # fmt: skip
            session.flush()
            key_id = key.id
        with self.db.session() as session:
            return self._sign(session, name, key_id, generated.public_key, start, end, now, takes_over, issuer_key)

    def _issuer(self, session: Session) -> Issuer:
        issuer = repositories.issuer_by_name(session, self.issuer_name)
        if issuer is None or issuer.kind != "tsa":
            raise CandorError(ErrorKind.NOT_FOUND, f"no time-stamping sub-CA named {self.issuer_name!r}")
        if issuer.status != "active":
            raise CandorError(ErrorKind.POLICY, f"the time-stamping sub-CA {self.issuer_name!r} is not active")
        return issuer

    def _next_name(self, session: Session, issuer: Issuer) -> str:
        count = session.scalar(select(func.count()).select_from(TsaUnit).where(TsaUnit.issuer_id == issuer.id))
        number = (count or 0) + 1
        while repositories.key_by_label(session, f"{issuer.name}-unit-{number}") is not None:
            number += 1
        return f"{issuer.name}-unit-{number}"

    def _sign(
        self,
        session: Session,
        name: str,
        key_id: int,
        public_key: CAPublicKey,
        start: datetime,
        end: datetime,
        now: datetime,
        takes_over: datetime,
        issuer_key: CAPrivateKey,
    ) -> CertifiedUnit:
        issuer = self._issuer(session)
        issuer_certificate = x509.load_der_x509_certificate(issuer.certificate_der)
        issuer_algorithm = KeyAlgorithm(issuer.key.algorithm)
        template = timestamp_certificate(
            subject=_unit_subject(issuer_certificate.subject, name),
            public_key=public_key,
            serial=x509.random_serial_number(),  # 159 bits from the CSPRNG (CSBR 7.1)
            not_before=start,
            not_after=end,
            issuer=IssuerInfo(
                name=issuer_certificate.subject,
                public_key=issuer_certificate.public_key(),  # type: ignore[arg-type]
                not_after=issuer_certificate.not_valid_after_utc,
                certificate_url=f"{self.base_url}/issuers/{issuer.name}.der",
                crl_url=shard_url(self.base_url, issuer.name, 0),
            ),
        )
        token = signing.prepare(
            template, algorithm=issuer_algorithm, kind=CertificateKind.PKIX, what=name, allow_local_urls=issuer.private
        )
        self.audit.record(
            session, actor=self.actor, action="certificate.sign.intent", subject=name, outcome="info",
            details={"tbs_sha256": token.tbs_sha256},
        )  # fmt: skip
        certificate = signing.sign(token, issuer_key, issuer_key=issuer_certificate.public_key())  # type: ignore[arg-type]
        der = certificate.public_bytes(Encoding.DER)
        self.audit.record(
            session, actor=self.actor, action="certificate.sign", subject=name, outcome="success",
            details={"kind": "tsa-unit", "serial": format(certificate.serial_number, "x"),
                     "tbs_sha256": token.tbs_sha256, "der": der.hex()},
        )  # fmt: skip
        serial = repositories.reserve_serial(session, issuer=issuer, serial=certificate.serial_number, created_at=now)
        stored = repositories.add_certificate(
            session, serial_record=serial, kind="certificate", der=der, created_at=now
        )
        key = session.get(KeyRecord, key_id)
        assert key is not None
        unit = TsaUnit(
            name=name, issuer_id=issuer.id, key_id=key_id, certificate_id=stored.id,
            not_before=certificate.not_valid_before_utc, not_after=certificate.not_valid_after_utc,
            usable_until=usable_until(certificate.not_valid_before_utc, certificate.not_valid_after_utc),
            signs_from=max(takes_over, certificate.not_valid_before_utc), status="active", created_at=now,
        )  # fmt: skip
        session.add(unit)
        session.flush()
        self.audit.record(
            session, actor=self.actor, action="tsa.unit.certify", subject=name, outcome="success",
            details={"algorithm": key.algorithm, "store": key.store, "serial": serial.serial_hex,
                     "not_before": unit.not_before.isoformat(), "signs_from": unit.signs_from.isoformat(),
                     "usable_until": unit.usable_until.isoformat(),
                     "not_after": unit.not_after.isoformat()},
        )  # fmt: skip
        path = self.public_dir / "tsa" / f"{name}.pem"
        write_atomically(path, certificate.public_bytes(Encoding.PEM))
        write_atomically(path.with_suffix(".der"), der)
        return CertifiedUnit(
            name=name, algorithm=key.algorithm, store=key.store, not_before=unit.not_before, signs_from=unit.signs_from,
            usable_until=unit.usable_until, not_after=unit.not_after, serial_hex=serial.serial_hex,
            certificate_path=path,
        )  # fmt: skip


def _unit_subject(issuer_subject: x509.Name, name: str) -> x509.Name:
    """The sub-CA's subject with the unit's number in its commonName ("... TSA CA1 Unit 2")."""
    suffix = f" Unit {name.rsplit('-', 1)[-1]}"
    return x509.Name(
        [
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(a.oid, str(a.value)[: 64 - len(suffix)] + suffix)
                    if a.oid == NameOID.COMMON_NAME
                    else a
                    for a in rdn
                ]
            )
            for rdn in issuer_subject.rdns
        ]
    )
