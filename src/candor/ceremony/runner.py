"""Run a key ceremony: keys, certificates, the root's first CRL, CT log keys; an audit event for every step.

Order of work: validate the file and open every key store first (a wrong PIN or passphrase stops the
ceremony before any key exists); then, for each CA, generate the key (recorded at once, so no key on a token
is ever unaccounted for), sign its certificate as linted, store it and publish it. A failure at any step is
recorded as ``ceremony.abort`` with the reason, and nothing signed before it is lost.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.orm import Session

from candor import signing
from candor.audit import AuditLog
from candor.clock import Clock
from candor.errors import CandorError, ErrorKind
from candor.keys import CAPrivateKey, CAPublicKey, KeyAlgorithm, KeyStores, check_key
from candor.lint import CertificateKind
from candor.profiles import (
    TLS_POLICIES,
    CertificateTemplate,
    IssuerInfo,
    ocsp_responder,
    root_ca,
    tls_subordinate_ca,
    tsa_subordinate_ca,
)
from candor.profiles.names import CASubject
from candor.storage import Database, repositories
from candor.storage.models import CertificateRecord, Issuer, KeyRecord

from .publish import PublicFiles, ca_crl
from .spec import CeremonySpec, KeySpec

Progress = Callable[[str], None]


def random_serial() -> int:
    """A positive serial with 127 bits from the CSPRNG, well under 2**159 (BR 7.1.2.1 serialNumber)."""
    while True:
        serial = secrets.randbits(127)
        if serial.bit_length() > 64:
            return serial


@dataclass
class Signer:
    """A CA during the ceremony: its stored record, certificate and signing key."""

    issuer: Issuer
    certificate: x509.Certificate
    key: CAPrivateKey
    algorithm: KeyAlgorithm


@dataclass
class CeremonyResult:
    issuers: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


class Ceremony:
    def __init__(
        self,
        spec: CeremonySpec,
        *,
        file_sha256: str,
        db: Database,
        stores: KeyStores,
        clock: Clock,
        public: PublicFiles,
        actor: str,
        progress: Progress = lambda _message: None,
    ) -> None:
        self.spec = spec
        self.file_sha256 = file_sha256
        self.db = db
        self.stores = stores
        self.clock = clock
        self.audit = AuditLog(clock)
        self.public = public
        self.actor = actor
        self.progress = progress
        self.result = CeremonyResult()
        self.base_url = spec.ceremony.base_url
        self.private = spec.ceremony.private

    # -- the steps ------------------------------------------------------------------------------------
    def run(self) -> CeremonyResult:
        self._preflight()
        self._event("ceremony.start", self.spec.ceremony.name, "info", file_sha256=self.file_sha256)
        try:
            root = self._root()
            for tls in self.spec.tls_issuers:
                issuer = self._subordinate(tls.name, tls.key, tls.subject, root, tls.validity_days, "tls", tls.policy)
                if tls.ocsp.key is not None:
                    self._ocsp_responder(issuer, tls.ocsp.key, timedelta(days=tls.ocsp.validity_days))
            if self.spec.timestamping is not None:
                tsa = self.spec.timestamping
                self._subordinate(tsa.name, tsa.key, tsa.subject, root, tsa.validity_days, "tsa", None)
            for log in self.spec.ct_logs:
                record, _ = self._generate_key(log.name, log.key, "ct-log")
                log_id = hashlib.sha256(record.public_key_der).hexdigest()
                self._event("ct_log.key_created", log.name, "success", operator=log.operator, log_id=log_id)
        except CandorError as exc:
            self._event("ceremony.abort", self.spec.ceremony.name, "failure", reason=exc.message)
            raise
        self._event(
            "ceremony.complete",
            self.spec.ceremony.name,
            "success",
            issuers=self.result.issuers,
            keys=self.result.keys,
        )
        return self.result

    def _preflight(self) -> None:
        configured = set(self.stores.names())
        missing = sorted(self.spec.stores() - configured)
        if missing:
            raise CandorError(
                ErrorKind.CONFIG,
                f"ceremony uses key store(s) {', '.join(missing)} not configured in candor.toml "
                f"(configured: {', '.join(sorted(configured)) or 'none'})",
            )
        with self.db.session() as session:
            for name in sorted(self.spec.stores()):
                store = self.stores.get(name)  # opens the store: a wrong PIN or missing token stops us here
                # A store that already holds keys must still open them: a new key under a different
                # passphrase would leave the store unusable as a whole.
                existing = session.scalars(select(KeyRecord).where(KeyRecord.store == name).limit(1)).first()
                if existing is not None:
                    check_key(
                        store,
                        handle=existing.handle,
                        algorithm=KeyAlgorithm(existing.algorithm),
                        public_key_der=existing.public_key_der,
                        label=existing.label,
                    )
            taken = [n for n in self._issuer_names() if repositories.issuer_by_name(session, n) is not None]
            labels = [label for label in self._key_labels() if repositories.key_by_label(session, label)]
        if taken or labels:
            raise CandorError(
                ErrorKind.CONFLICT,
                f"this data directory already has {', '.join(taken + labels)}; a ceremony never replaces a CA",
            )

    def _issuer_names(self) -> list[str]:
        names = [self.spec.root.name, *(t.name for t in self.spec.tls_issuers)]
        return names + ([self.spec.timestamping.name] if self.spec.timestamping else [])

    def _key_labels(self) -> list[str]:
        labels = self._issuer_names() + [log.name for log in self.spec.ct_logs]
        return labels + [f"{t.name}-ocsp-1" for t in self.spec.tls_issuers if t.ocsp.key is not None]

    def _root(self) -> Signer:
        spec = self.spec.root
        self.progress(f"root {spec.name}: generating {spec.key.algorithm} key in store {spec.key.store!r}")
        record, key = self._generate_key(spec.name, spec.key, "root-ca")
        public_key = key.public_key()
        template = root_ca(
            subject=spec.subject.to_name(),
            public_key=public_key,
            serial=random_serial(),
            now=self.clock.now(),
            validity_days=spec.validity_days,
        )
        recorded = _public_key(record.public_key_der)  # what the store reported when it made the key
        certificate = self._sign(template, key, spec.key.algorithm, CertificateKind.ROOT_CA, spec.name, recorded)
        with self.db.session() as session:
            issuer = repositories.add_issuer(
                session,
                name=spec.name,
                kind="root",
                parent=None,
                key=session.merge(record),
                certificate_der=certificate.public_bytes(Encoding.DER),
                created_at=self.clock.now(),
                private=self.private,
            )
            self._record_ca_certificate(session, issuer, certificate)
        root = Signer(issuer, certificate, key, spec.key.algorithm)
        self._publish_issuer(root)
        self._publish_crl(root, timedelta(days=spec.crl_validity_days))
        return root

    def _subordinate(
        self,
        name: str,
        key_spec: KeySpec,
        subject: CASubject,
        parent: Signer,
        validity_days: int,
        kind: str,
        policy: str | None,
    ) -> Signer:
        self.progress(f"{kind} CA {name}: generating {key_spec.algorithm} key in store {key_spec.store!r}")
        record, key = self._generate_key(name, key_spec, f"{kind}-ca")
        info = self._issuer_info(parent)
        common = {
            "subject": subject.to_name(),
            "public_key": key.public_key(),
            "serial": random_serial(),
            "now": self.clock.now(),
            "validity_days": validity_days,
            "issuer": info,
        }
        if kind == "tls":
            assert policy is not None
            template = tls_subordinate_ca(**common, policies=(TLS_POLICIES[policy],))  # type: ignore[arg-type]
            lint_kind = CertificateKind.TLS_CA
        else:
            template = tsa_subordinate_ca(**common)  # type: ignore[arg-type]
            lint_kind = CertificateKind.PKIX
        certificate = self._sign(template, parent.key, parent.algorithm, lint_kind, name, _issuer_key(parent))
        with self.db.session() as session:
            issuer = repositories.add_issuer(
                session,
                name=name,
                kind=kind,
                parent=session.merge(parent.issuer),
                key=session.merge(record),
                certificate_der=certificate.public_bytes(Encoding.DER),
                created_at=self.clock.now(),
                private=self.private,
            )
            self._record_ca_certificate(session, session.merge(parent.issuer), certificate)
        signer = Signer(issuer, certificate, key, key_spec.algorithm)
        self._publish_issuer(signer)
        return signer

    def _ocsp_responder(self, issuer: Signer, key_spec: KeySpec, validity: timedelta) -> None:
        label = f"{issuer.issuer.name}-ocsp-1"
        self.progress(f"OCSP responder {label}: generating {key_spec.algorithm} key")
        record, key = self._generate_key(label, key_spec, "ocsp-responder")
        issuer_subject = CASubject.model_validate(_subject_fields(issuer.certificate.subject))
        subject = issuer_subject.model_copy(update={"common_name": _responder_cn(issuer_subject.common_name)})
        template = ocsp_responder(
            subject=subject.to_name(),
            public_key=key.public_key(),
            serial=random_serial(),
            now=self.clock.now(),
            validity=validity,
            issuer=self._issuer_info(issuer),
        )
        certificate = self._sign(
            template, issuer.key, issuer.algorithm, CertificateKind.OCSP_RESPONDER, label, _issuer_key(issuer)
        )
        with self.db.session() as session:
            parent = session.merge(issuer.issuer)
            stored = self._record_ca_certificate(session, parent, certificate)
            repositories.add_ocsp_responder(
                session, issuer=parent, key=session.merge(record), certificate=stored, created_at=self.clock.now()
            )

    # -- helpers --------------------------------------------------------------------------------------
    def _generate_key(self, label: str, spec: KeySpec, purpose: str) -> tuple[KeyRecord, CAPrivateKey]:
        store = self.stores.get(spec.store)
        generated = store.generate(label, spec.algorithm)
        spki = generated.public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        protection = store.protection(generated.handle)
        with self.db.session() as session:
            record = repositories.add_key(
                session,
                label=label,
                store=spec.store,
                backend=store.backend_type,
                algorithm=spec.algorithm.value,
                handle=generated.handle,
                public_key_der=spki,
                purpose=purpose,
                created_at=self.clock.now(),
            )
            self.audit.record(
                session,
                actor=self.actor,
                action="key.generate",
                subject=label,
                outcome="success",
                details={
                    "store": spec.store,
                    "backend": store.backend_type,
                    "algorithm": spec.algorithm.value,
                    "spki_sha256": hashlib.sha256(spki).hexdigest(),
                    "location": protection.location,
                    "extractable": protection.extractable,
                    "sensitive": protection.sensitive,
                    "encrypted_at_rest": protection.encrypted_at_rest,
                },
            )
            session.flush()
            session.expunge(record)
        self.result.keys.append(label)
        return record, store.load(generated.handle, spec.algorithm)

    def _sign(
        self,
        template: CertificateTemplate,
        key: CAPrivateKey,
        algorithm: KeyAlgorithm,
        kind: CertificateKind,
        what: str,
        issuer_key: CAPublicKey,
    ) -> x509.Certificate:
        token = signing.prepare(template, algorithm=algorithm, kind=kind, what=what, allow_local_urls=self.private)
        warnings = [str(w) for w in token.report.warnings] if token.report else []
        # Audit before and after the signature: what is about to be signed, then what was.
        self._event("certificate.sign.intent", what, "info", tbs_sha256=token.tbs_sha256, lint_warnings=warnings)
        certificate = signing.sign(token, key, issuer_key=issuer_key)
        self._event(
            "certificate.sign",
            what,
            "success",
            kind=kind.value,
            serial=format(certificate.serial_number, "x"),
            tbs_sha256=token.tbs_sha256,
            fingerprint_sha256=certificate.fingerprint(hashes.SHA256()).hex(),
            der=certificate.public_bytes(Encoding.DER).hex(),
        )
        return certificate

    def _record_ca_certificate(
        self, session: Session, issuer: Issuer, certificate: x509.Certificate
    ) -> CertificateRecord:
        """Claim the certificate's serial under its issuer and store it, so the serial is never reused."""
        serial = repositories.reserve_serial(
            session, issuer=issuer, serial=certificate.serial_number, created_at=self.clock.now()
        )
        return repositories.add_certificate(
            session,
            serial_record=serial,
            kind="certificate",
            der=certificate.public_bytes(Encoding.DER),
            created_at=self.clock.now(),
        )

    def _issuer_info(self, signer: Signer) -> IssuerInfo:
        return IssuerInfo(
            name=signer.certificate.subject,
            public_key=signer.key.public_key(),
            not_after=signer.certificate.not_valid_after_utc,
            certificate_url=f"{self.base_url}/issuers/{signer.issuer.name}.der",
            crl_url=f"{self.base_url}/crl/{signer.issuer.name}.crl",
        )

    def _publish_issuer(self, signer: Signer) -> None:
        path = self.public.write_issuer(signer.issuer.name, signer.certificate)
        self.result.issuers.append(signer.issuer.name)
        self.result.files.append(path)

    def _publish_crl(self, signer: Signer, validity: timedelta) -> None:
        crl = ca_crl(signer.certificate, signer.key, signer.algorithm, now=self.clock.now(), validity=validity)
        path = self.public.write_crl(signer.issuer.name, crl)
        self.result.files.append(path)
        self._event(
            "crl.sign",
            signer.issuer.name,
            "success",
            crl_number=str(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number),
            next_update=crl.next_update_utc.isoformat() if crl.next_update_utc else None,
            der=crl.public_bytes(Encoding.DER).hex(),
        )

    def _event(self, action: str, subject: str, outcome: str, **details: object) -> None:
        with self.db.session() as session:
            self.audit.record(
                session, actor=self.actor, action=action, subject=subject, outcome=outcome, details=details
            )


def _public_key(spki_der: bytes) -> CAPublicKey:
    key = serialization.load_der_public_key(spki_der)
    assert isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
    return key


def _issuer_key(signer: Signer) -> CAPublicKey:
    """The issuer's public key as its certificate states it, to check each signature made in its name."""
    return _public_key(signer.certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))


def _subject_fields(name: x509.Name) -> dict[str, str]:
    mapping = {
        NameOID.COUNTRY_NAME: "country",
        NameOID.STATE_OR_PROVINCE_NAME: "state",
        NameOID.LOCALITY_NAME: "locality",
        NameOID.ORGANIZATION_NAME: "organization",
        NameOID.COMMON_NAME: "common_name",
    }
    return {mapping[a.oid]: str(a.value) for a in name if a.oid in mapping}


def _responder_cn(issuer_cn: str) -> str:
    suffix = " OCSP"
    return issuer_cn[: 64 - len(suffix)] + suffix
