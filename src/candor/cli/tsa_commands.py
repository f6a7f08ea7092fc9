"""``candor tsa ...``: certify and list TSA units, verify a token, and look up what the TSA issued.

* ``certify [--key-store NAME] [--key-type TYPE] [--takes-over TIME] [--validity-months N]``: a new unit (a key in
  the store and its Timestamp certificate from the time-stamping sub-CA, valid from now: no command sets a
  certificate's dates, WS-08d); with ``--takes-over`` later than now, ahead of a rotation (``candor serve``
  switches to it then, without a restart).
* ``list``: every unit, the one signing now, and each one's key usage period (CSBR 6.3.2).
* ``verify TOKEN [--data FILE | --digest HEX]``: a token or a whole reply, against this data directory's root
  and units; one line, exit code 0 when valid and 8 (integrity) when not.
* ``lookup --serial HEX | --digest HEX``: the recorded tokens ("did we issue this token?").
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from datetime import UTC, datetime

from cryptography import x509

from candor.cli.commands import _read_input
from candor.cli.context import Context, data_dir_from, open_context
from candor.errors import CandorError, ErrorKind
from candor.keys import KeyStores


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tsa = sub.add_parser("tsa", help="time-stamping authority (RFC 3161)")
    tsa_sub = tsa.add_subparsers(dest="tsa_command", required=True, metavar="ACTION")
    certify = tsa_sub.add_parser("certify", help="create a TSA unit: a key and its Timestamp certificate")
    certify.add_argument("--key-store", default="file", help="the configured key store for the new key")
    certify.add_argument(
        "--key-type", default="ecdsa-p256", help="ecdsa-p256 (default), ecdsa-p384, rsa-3072 or rsa-4096"
    )
    certify.add_argument(
        "--takes-over", help="when the service switches to the unit, ISO 8601 UTC, within its 15 months (default: now)"
    )
    certify.add_argument("--validity-months", type=int, default=135, help="certificate validity, at most 135")
    certify.set_defaults(handler=tsa_certify)
    listing = tsa_sub.add_parser("list", help="list the TSA units and which one signs now")
    listing.set_defaults(handler=tsa_list)
    verify = tsa_sub.add_parser("verify", help="verify a time-stamp token or reply (DER)")
    verify.add_argument("token", help="the token or TimeStampResp, DER ('-' for standard input)")
    what = verify.add_mutually_exclusive_group()
    what.add_argument("--data", help="the time-stamped file: its hash must be the token's imprint")
    what.add_argument("--digest", help="the time-stamped digest, hex")
    verify.set_defaults(handler=tsa_verify)
    lookup = tsa_sub.add_parser("lookup", help="find recorded tokens by serial or imprint")
    key = lookup.add_mutually_exclusive_group(required=True)
    key.add_argument("--serial", help="the token's serial number, hex")
    key.add_argument("--digest", help="the imprint (the hash of the time-stamped data), hex")
    lookup.set_defaults(handler=tsa_lookup)


def _say(message: str) -> None:
    print(message, flush=True)


def certify_unit(
    context: Context,
    stores: KeyStores,
    *,
    key_store: str,
    algorithm: str,
    signs_from: datetime | None = None,
    validity_months: int = 135,
) -> str:
    """Certify a unit for this data directory; a one-line description of it."""
    from candor.cli.clock_edge import require_clock
    from candor.tsa.certify import UnitCertifier, unit_algorithm

    settings = context.config.tsa
    if settings is None:
        raise CandorError(ErrorKind.CONFIG, "no [tsa] section in candor.toml: this data directory runs no TSA")
    require_clock(context, "a Timestamp certificate")
    unit = UnitCertifier(
        context.db, stores, context.clock, issuer=settings.issuer, base_url=context.config.server.public_base_url,
        public_dir=context.public_dir, actor=context.actor,
    ).certify(
        store=key_store, algorithm=unit_algorithm(algorithm), signs_from=signs_from, validity_months=validity_months
    )  # fmt: skip
    return (
        f"TSA unit {unit.name}: {unit.algorithm} key in store {unit.store!r}, certificate serial {unit.serial_hex}; "
        f"certificate from {unit.not_before:%Y-%m-%dT%H:%M:%SZ}; "
        f"signs from {unit.signs_from:%Y-%m-%dT%H:%M:%SZ} until {unit.usable_until:%Y-%m-%dT%H:%M:%SZ}; "
        f"certificate {unit.certificate_path}"
    )


def tsa_certify(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    signs_from = _utc(args.takes_over) if args.takes_over else None
    with open_context(data_dir_from(args.data_dir, environ), environ) as context:
        stores = KeyStores(context.config.keys.stores, base_dir=context.data_dir, environ=context.environ)
        try:
            _say(
                certify_unit(
                    context, stores, key_store=args.key_store, algorithm=args.key_type, signs_from=signs_from,
                    validity_months=args.validity_months,
                )
            )  # fmt: skip
        finally:
            stores.close()
    return 0


def _utc(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CandorError(ErrorKind.CONFIG, f"--takes-over {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise CandorError(ErrorKind.CONFIG, "--takes-over needs a time zone (e.g. 2027-03-01T00:00:00Z)")
    return moment.astimezone(UTC)


def tsa_list(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from candor.tsa.units import load_unit_records

    with open_context(data_dir_from(args.data_dir, environ), environ) as context, context.db.session() as session:
        records = load_unit_records(session)
        now = context.clock.now()
    signing = max((r for r in records if r.usable_at(now)), key=lambda r: (r.signs_from, r.id), default=None)
    for record in records:
        mark = "*" if record is signing else " "
        _say(
            f"{mark} {record.name:20} {record.status:8} {record.key_algorithm:10} store {record.key_store!r:8} "
            f"signs {record.signs_from:%Y-%m-%dT%H:%M:%SZ} .. {record.usable_until:%Y-%m-%dT%H:%M:%SZ}  "
            f"certificate until {record.not_after:%Y-%m-%d}  serial {record.certificate.serial_number:x}"
        )
    if not records:
        _say("no TSA unit; create one with 'candor tsa certify'")
    elif signing is None:
        _say("no unit may sign now: certify one with 'candor tsa certify'")
    return 0


def tsa_verify(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from candor.storage import repositories
    from candor.tsa.units import load_unit_records
    from candor.tsa.verify import verify_token

    token = _read_input(args.token)
    digest = _hex(args.digest, "--digest") if args.digest else None
    message = _read_input(args.data) if args.data else None
    with open_context(data_dir_from(args.data_dir, environ), environ) as context, context.db.session() as session:
        roots = [
            x509.load_der_x509_certificate(i.certificate_der) for i in repositories.list_issuers(session, kind="root")
        ]
        known: list[x509.Certificate] = []
        for record in load_unit_records(session):
            known += [record.certificate, *record.chain]
    try:
        verified = verify_token(token, roots=roots, certificates=known, message=message, digest=digest)
    except CandorError as exc:
        if exc.kind is not ErrorKind.INTEGRITY:
            raise
        raise CandorError(ErrorKind.INTEGRITY, f"token invalid: {exc.message}") from None
    checked = " (imprint matches the data)" if message is not None else (" (imprint matches)" if digest else "")
    _say(
        f"token OK: serial {verified.serial:x}, genTime {verified.gen_time.isoformat()}, policy {verified.policy}, "
        f"{verified.imprint_algorithm.name} imprint {verified.imprint.hex()}{checked}, "
        f"signed by {verified.signer.subject.rfc4514_string()}"
    )
    return 0


def tsa_lookup(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from candor.tsa.records import find_tokens

    serial = int(_hex(args.serial, "--serial").hex() or "0", 16) if args.serial else None
    imprint = _hex(args.digest, "--digest") if args.digest else None
    with open_context(data_dir_from(args.data_dir, environ), environ) as context, context.db.session() as session:
        found = find_tokens(session, serial=serial, imprint=imprint)
    if not found:
        raise CandorError(
            ErrorKind.NOT_FOUND, "no token with this " + ("serial" if serial else "imprint") + " was issued"
        )
    for token in found:
        _say(
            f"issued: serial {token.serial_hex}, genTime {token.gen_time.isoformat()}, unit {token.unit}, "
            f"policy {token.policy}, imprint {token.imprint_algorithm} {token.imprint.hex()}"
        )
    return 0


def _hex(text: str, option: str) -> bytes:
    cleaned = text.replace(":", "").strip()
    try:
        return bytes.fromhex(cleaned if len(cleaned) % 2 == 0 else "0" + cleaned)
    except ValueError:
        raise CandorError(ErrorKind.CONFIG, f"{option} {text!r} is not hexadecimal") from None


def first_unit(context: Context) -> str:
    """``candor init``: the data directory's first unit (ECDSA P-256 in the file store), so the TSA serves at once."""
    stores = KeyStores(context.config.keys.stores, base_dir=context.data_dir, environ=context.environ)
    try:
        return certify_unit(context, stores, key_store="file", algorithm="ecdsa-p256")
    finally:
        stores.close()


__all__ = ["add_parser", "certify_unit", "first_unit"]
