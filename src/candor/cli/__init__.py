"""The ``candor`` command: parse, call one domain function, print. Errors are one line, never a traceback."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from candor import __version__
from candor.cli import clock_edge, commands, crl_commands, ct_commands, tsa_commands
from candor.errors import CandorError, ErrorKind

# Exit codes by error kind, so scripts can tell a bad config from a locked token.
EXIT_CODES = {
    ErrorKind.CONFIG: 2,
    ErrorKind.KEY: 3,
    ErrorKind.POLICY: 4,
    ErrorKind.LINT: 4,
    ErrorKind.MALFORMED: 4,
    ErrorKind.BAD_CSR: 4,
    ErrorKind.BAD_PUBLIC_KEY: 4,
    ErrorKind.REJECTED_IDENTIFIER: 4,
    ErrorKind.UNAUTHORIZED: 4,
    ErrorKind.RATE_LIMITED: 9,
    ErrorKind.CONFLICT: 5,
    ErrorKind.NOT_FOUND: 6,
    ErrorKind.STORAGE: 7,
    ErrorKind.INTEGRITY: 8,
    ErrorKind.UNAVAILABLE: 9,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="candor", description="Candor certificate authority")
    parser.add_argument("--version", action="version", version=f"candor {__version__}")
    parser.add_argument("--data-dir", help="data directory (default: $CANDOR_HOME)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = sub.add_parser("init", help="create a data directory and run the default ceremony with file keys")
    init.add_argument("--port", type=int, default=8080, help="port 'candor serve' will listen on")
    init.add_argument("--base-url", help="base of AIA/CRL URLs (default http://127.0.0.1:PORT)")
    init.add_argument("--acme-port", type=int, help="HTTPS port of the ACME server (default PORT + 363)")
    init.set_defaults(handler=commands.init)

    ceremony = sub.add_parser("ceremony", help="run a key ceremony from a ceremony file")
    ceremony.add_argument("--config", required=True, help="the ceremony file (TOML)")
    ceremony.set_defaults(handler=commands.ceremony)

    hierarchy = sub.add_parser("hierarchy", help="show the CA hierarchy with fingerprints and validity")
    hierarchy.set_defaults(handler=commands.hierarchy)

    audit = sub.add_parser("audit", help="audit log operations")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = audit_sub.add_parser("verify", help="verify the audit log's hash chain")
    verify.add_argument("--anchor", help="expected head as SEQ:HASH, recorded earlier from 'audit verify'")
    verify.set_defaults(handler=commands.audit_verify)

    issue = sub.add_parser("issue", help="issue a certificate for a CSR (operator issuance)")
    issue.add_argument("--csr", required=True, help="PKCS#10 request, PEM or DER ('-' for standard input)")
    issue.add_argument("--issuer", required=True, help="the TLS issuing CA, by name")
    issue.add_argument("--profile", default="dv", choices=["dv", "ov", "ev"], help="certificate profile")
    issue.add_argument("--account", help="account whose authorizations cover the names (needed on public issuers)")
    issue.add_argument("--out", help="write the PEM chain here instead of standard output")
    issue.set_defaults(handler=commands.issue)

    revoke = sub.add_parser("revoke", help="revoke a certificate by issuer and serial")
    revoke.add_argument("--issuer", required=True, help="the issuing CA, by name")
    revoke.add_argument("--serial", required=True, help="the serial number in hex")
    revoke.add_argument(
        "--reason",
        default="unspecified",
        help="unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn",
    )
    revoke.set_defaults(handler=commands.revoke)

    inspect = sub.add_parser("inspect", help="print a certificate and its pkilint findings")
    inspect.add_argument("certificate", help="certificate, PEM or DER ('-' for standard input)")
    inspect.set_defaults(handler=commands.inspect)

    keys = sub.add_parser("keys", help="key operations")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    keys_verify = keys_sub.add_parser("verify", help="check every recorded key can sign and matches its record")
    keys_verify.set_defaults(handler=commands.keys_verify)

    acme = sub.add_parser("acme", help="ACME server operations")
    acme_sub = acme.add_subparsers(dest="acme_command", required=True, metavar="ACTION")
    eab = acme_sub.add_parser("eab", help="external account binding keys (RFC 8555 7.3.4)")
    eab_sub = eab.add_subparsers(dest="eab_command", required=True, metavar="ACTION")
    eab_create = eab_sub.add_parser("create", help="make a key identifier and print it with its MAC key")
    eab_create.add_argument("--label", required=True, help="who the key is for (shown in the list)")
    eab_create.set_defaults(handler=commands.eab_create)
    eab_list = eab_sub.add_parser("list", help="list key identifiers and the accounts they bound")
    eab_list.set_defaults(handler=commands.eab_list)
    eab_revoke = eab_sub.add_parser("revoke", help="refuse a key identifier for any future binding")
    eab_revoke.add_argument("kid")
    eab_revoke.set_defaults(handler=commands.eab_revoke)

    db = sub.add_parser("db", help="database operations")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_sub.add_parser("upgrade", help="apply schema migrations")
    upgrade.set_defaults(handler=commands.db_upgrade)

    ct_commands.add_parser(sub)
    crl_commands.add_parser(sub)
    clock_edge.add_parser(sub)
    tsa_commands.add_parser(sub)

    serve = sub.add_parser("serve", help="serve the CA's HTTP endpoints")
    serve.add_argument("--host", help="override server.host")
    serve.add_argument("--port", type=int, help="override server.port")
    serve.set_defaults(handler=commands.serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        result: int = args.handler(args, os.environ)
        return result
    except CandorError as exc:
        print(f"candor: error: {exc.message}", file=sys.stderr)
        return EXIT_CODES.get(exc.kind, 1)
    except KeyboardInterrupt:
        print("candor: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an unexpected failure: one line for the operator, details in the log
        logging.getLogger("candor").debug("unexpected failure", exc_info=True)
        print(f"candor: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
