"""``candor ct ...``: Certificate Transparency commands. Each parses its arguments and calls one domain function.

``candor ct audit`` reads each log (RFC 6962 5.3, 5.4; :mod:`candor.ct.audit`), prints one line per log, an
``ALERT`` line on standard error for each alert, and exits 0 when every log was read and is consistent, 8
(ErrorKind.INTEGRITY) when there is any alert, and 9 (UNAVAILABLE) when a log could not be read.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

from candor.cli.context import Context, data_dir_from, open_context
from candor.ct.audit import CtAuditor
from candor.ct.submit.loglist import LogInfo, LogKind, LogState, load_log_list
from candor.errors import CandorError, ErrorKind

EXIT_ALERT = 8  # the same code as ErrorKind.INTEGRITY
EXIT_UNREADABLE = 9  # the same code as ErrorKind.UNAVAILABLE
DEFAULT_MMD_SECONDS = 86_400  # a log given by --log: Chrome's and Apple's policies cap the MMD at 24 h


def ct_audit(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    data_dir = data_dir_from(args.data_dir, environ)
    with open_context(data_dir, environ) as context:
        logs = _logs(args, context)
        auditor = CtAuditor(db=context.db, clock=context.clock, actor=context.actor)
        reports = [auditor.audit(log) for log in logs]
    for report in reports:
        print(report.summary(), flush=True)
        for alert in report.alerts:
            print(f"ALERT {alert.action}: {alert.message}", file=sys.stderr, flush=True)
    if any(report.alerts for report in reports):
        return EXIT_ALERT
    return EXIT_UNREADABLE if any(report.error is not None for report in reports) else 0


def _logs(args: argparse.Namespace, context: Context) -> list[LogInfo]:
    if args.log is not None:
        if args.key is None:
            raise CandorError(ErrorKind.CONFIG, "--log needs --key, the log's public key (PEM)")
        return [_one_log(args.log, Path(args.key), args.mmd)]
    if args.key is not None:
        raise CandorError(ErrorKind.CONFIG, "--key goes with --log")
    path = Path(args.log_list) if args.log_list is not None else _configured_log_list(context)
    listed = load_log_list(path)
    logs = [log for log in listed.logs if log.kind is LogKind.RFC6962]
    for skipped in (log for log in listed.logs if log.kind is not LogKind.RFC6962):
        print(f"ct audit {skipped.description!r}: not audited: a static-ct-api log (only RFC 6962 reads are audited)")
    if not logs:
        raise CandorError(ErrorKind.CONFIG, f"{path}: no RFC 6962 log to audit")
    return logs


def _configured_log_list(context: Context) -> Path:
    """``[ct.submit] log_list``: the logs this data directory's certificates are logged to."""
    path = context.config.ct.submit.log_list_path(context.data_dir)
    if path is None:
        raise CandorError(ErrorKind.CONFIG, "no CT log list configured: pass --log-list FILE, or --log URL --key PEM")
    return path


def _one_log(url: str, key_file: Path, mmd: int) -> LogInfo:
    if not url.startswith(("http://", "https://")):
        raise CandorError(ErrorKind.CONFIG, f"--log {url}: not an http(s) URL")
    try:
        key = load_pem_public_key(key_file.read_bytes())
    except OSError as exc:
        raise CandorError(ErrorKind.CONFIG, f"--key {key_file}: cannot be read ({exc.strerror})") from None
    except ValueError:
        raise CandorError(ErrorKind.CONFIG, f"--key {key_file}: not a PEM public key") from None
    key_der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return LogInfo(
        operator="(given on the command line)",
        description=url,
        log_id=hashlib.sha256(key_der).digest(),  # RFC 6962 3.2
        key_der=key_der,
        submission_url=url if url.endswith("/") else url + "/",
        mmd_seconds=mmd,
        state=LogState.USABLE,
        state_since=datetime.fromtimestamp(0, tz=UTC),
        kind=LogKind.RFC6962,
    )


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``candor ct``: its actions."""
    ct = sub.add_parser("ct", help="Certificate Transparency operations")
    ct_sub = ct.add_subparsers(dest="ct_command", required=True, metavar="ACTION")
    audit = ct_sub.add_parser("audit", help="verify logs' tree heads and find certificates Candor did not issue")
    source = audit.add_mutually_exclusive_group()
    source.add_argument("--log-list", help="a v3 JSON log list (default: [ct.submit] log_list)")
    source.add_argument("--log", help="one RFC 6962 log's URL (its API is at URL/ct/v1/)")
    audit.add_argument("--key", help="with --log: the log's public key, PEM")
    audit.add_argument(
        "--mmd", type=int, default=DEFAULT_MMD_SECONDS, help="with --log: its maximum merge delay in seconds"
    )
    audit.set_defaults(handler=ct_audit)
