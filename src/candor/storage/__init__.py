"""Persistence: the database handle, the schema, and the repository functions over it."""

from candor.storage import (  # noqa: F401  (register their tables)
    models_acme,
    models_crl,
    models_ct,
    models_ct_audit,
    models_ct_submit,
    models_issuance,
    models_ocsp,
    models_tsa,
)
from candor.storage.database import Database, head_revision
from candor.storage.dberrors import conflict_from, insert_unique
from candor.storage.models import (
    AuditEvent,
    Base,
    CertificateRecord,
    Issuer,
    KeyRecord,
    OcspResponder,
    SerialRecord,
)
from candor.storage.repositories import (
    add_certificate,
    add_issuer,
    add_key,
    add_ocsp_responder,
    issuer_by_name,
    key_by_label,
    list_issuers,
    ocsp_responders,
    reserve_serial,
    serial_by_value,
)
from candor.storage.serials import serial_from_hex, serial_to_hex

__all__ = [
    "AuditEvent",
    "Base",
    "CertificateRecord",
    "Database",
    "Issuer",
    "KeyRecord",
    "OcspResponder",
    "SerialRecord",
    "add_certificate",
    "add_issuer",
    "add_key",
    "add_ocsp_responder",
    "conflict_from",
    "head_revision",
    "insert_unique",
    "issuer_by_name",
    "key_by_label",
    "list_issuers",
    "ocsp_responders",
    "reserve_serial",
    "serial_by_value",
    "serial_from_hex",
    "serial_to_hex",
]
