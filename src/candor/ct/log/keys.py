"""The log's key from the configured key stores: the one module of the log that imports ``candor.keys``.

The ceremony creates each log key (purpose "ct-log", labelled with the log's name); here it is found by label,
opened through its store (file or PKCS#11: the private key never leaves a token), checked against the public
key recorded at the ceremony, and wrapped as a :class:`~candor.ct.log.signer.LogSigner`. The web routes and
the log service never see the key object.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from candor.clock import Clock
from candor.ct.log.chain import load_roots
from candor.ct.log.service import CtLog, LogParameters, SharedWriter
from candor.ct.log.settings import CtLogSettings
from candor.ct.log.signer import EcdsaSigner, LogSigner
from candor.errors import CandorError, ErrorKind
from candor.keys import KeyAlgorithm, KeyStores, check_key
from candor.storage import Database, key_by_label


def log_signer(stores: KeyStores, db: Database, label: str) -> LogSigner:
    """The signer for the CT log key *label* (RFC 6962 2.1.4: ECDSA P-256)."""
    with db.session() as session:
        record = key_by_label(session, label)
        if record is None:
            raise CandorError(ErrorKind.CONFIG, f"no key labelled {label!r}: run the ceremony with a [[ct_logs]] entry")
        store_name, handle, algorithm = record.store, record.handle, record.algorithm
        purpose, public_key_der = record.purpose, record.public_key_der
    if purpose != "ct-log" or algorithm != KeyAlgorithm.ECDSA_P256.value:
        raise CandorError(ErrorKind.CONFIG, f"key {label!r} is a {purpose} {algorithm} key, not a CT log P-256 key")
    store = stores.get(store_name)
    check_key(store, handle=handle, algorithm=KeyAlgorithm.ECDSA_P256, public_key_der=public_key_der, label=label)
    key = store.load(handle, KeyAlgorithm.ECDSA_P256)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CandorError(ErrorKind.KEY, f"key {label!r} is not an ECDSA key")
    return EcdsaSigner(key)


def open_log(
    settings: CtLogSettings,
    *,
    db: Database,
    clock: Clock,
    stores: KeyStores,
    data_dir: Path,
    public_base_url: str,
    writer: SharedWriter | None = None,
    registry: Database | None = None,
) -> CtLog:
    """A configured log, ready for :meth:`CtLog.start` and :func:`candor.ct.log.ct_log_routes`, storing its
    entries in *db*; with *writer*, it stores its submissions with the other logs of that writer
    (:class:`~candor.ct.log.service.SharedWriter`). Its key record is read from *registry* (the CA's database,
    where the ceremony records it; default *db*) and copied into *db* when that is another database."""
    try:
        roots = load_roots(settings.root_paths(data_dir))
    except ValueError as exc:
        raise CandorError(ErrorKind.CONFIG, f"ct.logs {settings.name!r}: {exc}") from None
    parameters = LogParameters.from_settings(settings, data_dir=data_dir, public_base_url=public_base_url)
    registry = registry if registry is not None else db
    signer = log_signer(stores, registry, parameters.key_label)
    try:
        return CtLog(parameters, db=db, clock=clock, signer=signer, roots=roots, writer=writer, registry=registry)
    except ValueError as exc:
        raise CandorError(ErrorKind.CONFIG, f"ct.logs {settings.name!r}: {exc}") from None
