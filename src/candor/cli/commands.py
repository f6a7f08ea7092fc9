"""The CLI's commands. Each parses nothing itself and calls one domain function."""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import sys
from collections.abc import Awaitable, Callable, Mapping
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from candor.audit import AuditLog
from candor.ceremony import Ceremony, PublicFiles, load_ceremony
from candor.cli import ct_edge, ocsp_edge, tsa_edge
from candor.cli.context import Context, data_dir_from, open_context
from candor.cli.render import render_hierarchy
from candor.config import CONFIG_FILE_NAME, load_config, resolve_secret
from candor.defaults import CEREMONY_TEMPLATE, CONFIG_TEMPLATE
from candor.errors import CandorError, ErrorKind
from candor.keys import KeyStores

if TYPE_CHECKING:
    from candor.acme.nonces import Nonces
    from candor.server import AcmeListener, Worker


def _say(message: str, *, err: bool = False) -> None:
    print(message, flush=True, file=sys.stderr if err else sys.stdout)


def _run_ceremony(context: Context, ceremony_file: Path) -> None:
    from candor.cli.clock_edge import require_clock

    spec, digest = load_ceremony(ceremony_file)
    require_clock(context, "the key ceremony")  # its certificates' dates come from this clock
    stores = KeyStores(context.config.keys.stores, base_dir=context.data_dir, environ=context.environ)
    try:
        result = Ceremony(
            spec,
            file_sha256=digest,
            db=context.db,
            stores=stores,
            clock=context.clock,
            public=PublicFiles(context.public_dir),
            actor=context.actor,
            progress=lambda message: _say(f"  {message}"),
        ).run()
    finally:
        stores.close()
    _say(f"ceremony complete: {len(result.issuers)} CA certificate(s), {len(result.keys)} key(s)")


def init(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    data_dir = data_dir_from(args.data_dir, environ)
    if (data_dir / CONFIG_FILE_NAME).exists():
        raise CandorError(ErrorKind.CONFLICT, f"{data_dir} is already initialised ({CONFIG_FILE_NAME} exists)")
    if not 1 <= args.port <= 65535:
        raise CandorError(ErrorKind.CONFIG, "--port must be 1-65535")
    base_url = args.base_url or f"http://127.0.0.1:{args.port}"
    data_dir.mkdir(parents=True, exist_ok=True)
    secrets_dir = data_dir / "secrets"
    secrets_dir.mkdir(mode=0o700, exist_ok=True)
    passphrase_file = secrets_dir / "key-passphrase"
    fd = os.open(passphrase_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=") + "\n")
    ceremony_file = data_dir / "ceremony.toml"
    ceremony_file.write_text(CEREMONY_TEMPLATE.format(base_url=base_url), encoding="utf-8")
    from candor.cli.clock_edge import initial_clock

    config_text, clock_note = initial_clock(
        CONFIG_TEMPLATE.format(port=args.port, base_url=base_url, acme_port=args.acme_port or args.port + 363)
    )
    (data_dir / CONFIG_FILE_NAME).write_text(config_text, encoding="utf-8")
    load_config(data_dir)  # the template must itself be valid
    _say(clock_note)
    _say(f"initialised {data_dir}; running the default ceremony ({ceremony_file.name})")
    with open_context(data_dir, environ, migrate=True) as context:
        _run_ceremony(context, ceremony_file)
        with context.db.session() as session:
            _say(render_hierarchy(session))
        if context.config.tsa is not None:  # the template's [tsa]: the first unit, so that the TSA serves at once
            from candor.cli.tsa_commands import first_unit

            _say(first_unit(context))
    return 0


def ceremony(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    data_dir = data_dir_from(args.data_dir, environ)
    ceremony_file = Path(args.config)
    load_ceremony(ceremony_file)  # validate the file before touching the database
    with open_context(data_dir, environ, migrate=True) as context:
        _run_ceremony(context, ceremony_file)
    return 0


def hierarchy(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    with (
        open_context(data_dir_from(args.data_dir, environ), environ) as context,
        context.db.session() as session,
    ):
        _say(render_hierarchy(session))
    return 0


def audit_verify(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from candor.audit import verify_chain

    anchor: tuple[int, str] | None = None
    if args.anchor:
        seq, _, digest = args.anchor.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            raise CandorError(ErrorKind.CONFIG, "--anchor must be SEQ:HASH (hash as 64 hex digits)")
        anchor = (int(seq), digest.lower())
    with (
        open_context(data_dir_from(args.data_dir, environ), environ) as context,
        context.db.session() as session,
    ):
        report = verify_chain(session, expected_head=anchor)
    if not report.ok:
        raise CandorError(ErrorKind.INTEGRITY, f"audit log broken: {report.problem}")
    _say(f"audit log intact: {report.events_checked} events; head {report.head_seq}:{report.head_hash}")
    return 0


def db_upgrade(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    with open_context(data_dir_from(args.data_dir, environ), environ, migrate=True) as context:
        _say(f"database at revision {context.db.current_revision()}")
        logs = ct_edge.logs_database(context, migrate=True)
        if logs is not None:
            try:
                _say(f"CT logs' database at revision {logs.current_revision()}")
            finally:
                logs.dispose()
    return 0


def serve(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from candor.cli.acme_edge import acme_listener, shared_nonces
    from candor.cli.clock_edge import serving_clock
    from candor.cli.context import build_signer
    from candor.cli.crl_commands import crl_loop_task
    from candor.server import Worker, run_server

    data_dir = data_dir_from(args.data_dir, environ)
    with open_context(data_dir, environ) as context:
        host = args.host or context.config.server.host
        # The embedded default runs the signer in this process: finish what a crash interrupted first, and
        # issue the ACME listener's certificate, once, before any worker starts.
        stores = KeyStores(context.config.keys.stores, base_dir=context.data_dir, environ=context.environ)
        workers = context.config.server.workers
        own = ct_edge.open_own_logs(context, stores)
        ct: ct_edge.Transparency | None = None
        try:
            list_path = ct_edge.publish_log_list(context, own)
            ct = ct_edge.transparency(context, own)
            clock = serving_clock(context, primary=True)  # its first verdict, before anything is signed
            signer = build_signer(
                context, stores, sct_source=ct.submitter if ct is not None else None, clock_watch=clock.watch
            )
            for note in signer.reconcile():
                _say(f"reconciled: {note}")
            finalizer = ct_edge.LoggedSigner(signer, ct) if ct is not None else signer
            nonces = shared_nonces(context)  # here, before the workers fork: they share it
            acme = acme_listener(context, finalizer, host=host, nonces=nonces, serving=workers == 1)
            for settings, _ in own.logs:
                _say(f"  CT log {settings.name}: {context.config.server.public_base_url}{settings.prefix}/ct/v1/")
            if list_path is not None:
                _say(f"  CT log list: {list_path}")
            build: Callable[[bool], Worker]
            if workers == 1:
                responder = ocsp_edge.open_responder(context, stores, clock.watch)
                tsa = tsa_edge.serve_parts(context, stores, clock.watch, primary=True)
                background = (
                    crl_loop_task(context, stores, clock.watch),
                    ocsp_edge.presign_task(context, stores, responder, clock.watch),
                    *clock.background,
                    *((_drain(ct),) if ct is not None else ()),
                    *tsa.background,
                )
                ocsp = ocsp_edge.responder_endpoints(context, responder)
                routes = (*own.routes(), *ocsp.routes, *tsa.routes)
                close = _both(responder.close, tsa.close)
                this = Worker(
                    db=context.db, acme=acme, routes=routes, background=background, close=close, protocol=ocsp.protocol
                )
                build = partial(_this_process, this)
            else:
                tsa = tsa_edge.probe(context, stores, clock.watch)  # a unit that may not sign stops start-up here
                if ct is not None:
                    ct.close()
                own.close()  # the primary worker sequences the logs from now on; no thread crosses the fork
                stores.close()  # each worker opens its own (PKCS#11 sessions do not survive a fork)
                build = partial(_serve_worker, data_dir, environ, host=host, listener=acme, nonces=nonces)
            if tsa.url is not None:
                _say(f"  TSA (RFC 3161): POST application/timestamp-query to {tsa.url}")
            return run_server(
                config=context.config,
                db=context.db,
                clock=context.clock,
                public_dir=context.public_dir,
                host=args.host,
                port=args.port,
                announce=_say,
                build=build,
                acme=acme,
                workers=workers,
            )
        finally:
            if ct is not None:
                ct.close()
            own.close()
            stores.close()


def _drain(ct: ct_edge.Transparency) -> Callable[[], Awaitable[None]]:
    """The final-certificate CT queue, retried in a thread of the primary worker while it serves."""
    from candor.server import threaded_task

    return threaded_task(ct.drain_until)


def _this_process(worker: Worker, _primary: bool) -> Worker:
    return worker


def _both(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    def close() -> None:
        try:
            first()
        finally:
            second()

    return close


def _serve_worker(
    data_dir: Path,
    environ: Mapping[str, str],
    primary: bool,
    *,
    host: str,
    listener: AcmeListener | None,
    nonces: Nonces | None,
) -> Worker:
    """One ``candor serve`` worker process's own database, key stores, signer and ACME service. The ACME
    listener presents the certificate the parent issued (or was given), handed over as an operator's listener
    certificate whose password lives only in this process's memory."""
    from candor.cli.acme_edge import acme_listener
    from candor.cli.clock_edge import serving_clock
    from candor.cli.context import build_signer
    from candor.cli.crl_commands import crl_loop_task
    from candor.config import SecretSource
    from candor.server import Worker

    stack = ExitStack()
    try:
        if listener is not None:
            environ = {**environ, _HANDED_OVER_KEY_VARIABLE: listener.keyfile_password}
        context = stack.enter_context(open_context(data_dir, environ))
        if listener is not None:
            handed_over = context.config.acme.model_copy(
                update={
                    "listener_certificate": listener.certfile,
                    "listener_key": listener.keyfile,
                    "listener_key_password": SecretSource(env=_HANDED_OVER_KEY_VARIABLE),
                }
            )
            context.config = context.config.model_copy(update={"acme": handed_over})
        stores = KeyStores(context.config.keys.stores, base_dir=context.data_dir, environ=context.environ)
        stack.callback(stores.close)
        own = ct_edge.open_own_logs(context, stores, sequence=primary)  # the others store, give SCTs and follow
        stack.callback(own.close)
        ct = ct_edge.transparency(context, own)
        if ct is not None:
            stack.callback(ct.close)
        clock = serving_clock(context, primary=primary)  # the primary polls; the others read its verdict
        stack.callback(clock.close)
        signer = build_signer(
            context, stores, sct_source=ct.submitter if ct is not None else None, clock_watch=clock.watch
        )
        finalizer = ct_edge.LoggedSigner(signer, ct) if ct is not None else signer
        acme = acme_listener(context, finalizer, host=host, nonces=nonces)
        responder = ocsp_edge.open_responder(context, stores, clock.watch)
        stack.callback(responder.close)
        background: tuple[Callable[[], Awaitable[None]], ...] = ()
        if primary:
            background = (
                crl_loop_task(context, stores, clock.watch),
                ocsp_edge.presign_task(context, stores, responder, clock.watch),
                *clock.background,
                *((_drain(ct),) if ct is not None else ()),
            )
        else:
            stack.callback(ocsp_edge.follow_database(context, responder).set)
        tsa = tsa_edge.serve_parts(context, stores, clock.watch, primary=primary)
        stack.callback(tsa.close)
        ocsp = ocsp_edge.responder_endpoints(context, responder)
        routes = (*own.routes(), *ocsp.routes, *tsa.routes)
        background = (*background, *tsa.background)
        return Worker(
            db=context.db, acme=acme, routes=routes, background=background, close=stack.close, protocol=ocsp.protocol
        )
    except BaseException:
        stack.close()
        raise


_HANDED_OVER_KEY_VARIABLE = "CANDOR_SERVE_LISTENER_KEY_PASSWORD"  # in the worker's own mapping, never os.environ


def eab_create(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Create an external account binding key; its MAC key is printed once and never stored."""
    from candor.acme import eab

    with open_context(data_dir_from(args.data_dir, environ), environ) as context:
        source = context.config.acme.eab_secret
        if source is None:
            raise CandorError(ErrorKind.CONFIG, "acme.eab_secret is not set in candor.toml")
        secret = resolve_secret(source, base_dir=context.data_dir, environ=context.environ)
        with context.db.session() as session:
            record = eab.create_key(session, label=args.label, now=context.clock.now())
            AuditLog(context.clock).record(
                session, actor=context.actor, action="acme.eab.create", subject=record.kid, outcome="success",
                details={"label": args.label},
            )  # fmt: skip
            kid = record.kid
    print(f"kid: {kid}")
    print(f"hmac key: {eab.encode_mac_key(eab.mac_key(secret, kid))}")
    print(f"certbot: --eab-kid {kid} --eab-hmac-key {eab.encode_mac_key(eab.mac_key(secret, kid))}")
    return 0


def eab_list(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from candor.acme import eab

    with open_context(data_dir_from(args.data_dir, environ), environ) as context, context.db.session() as session:
        for record in eab.list_keys(session):
            bound = f"account {record.account_id}" if record.account_id is not None else "-"
            print(f"{record.kid}  {record.status:8}  {bound:14}  {record.label}")
    return 0


def eab_revoke(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from candor.acme import eab

    with open_context(data_dir_from(args.data_dir, environ), environ) as context, context.db.session() as session:
        eab.revoke_key(session, args.kid)
        AuditLog(context.clock).record(
            session, actor=context.actor, action="acme.eab.revoke", subject=args.kid, outcome="success", details={}
        )
    _say(f"{args.kid} revoked: it binds no new account")
    return 0


def keys_verify(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Open every recorded key, sign a probe and verify it against the recorded public key."""
    from sqlalchemy import select

    from candor.keys import KeyAlgorithm, check_key
    from candor.storage.models import KeyRecord

    with open_context(data_dir_from(args.data_dir, environ), environ) as context:
        stores = KeyStores(context.config.keys.stores, base_dir=context.data_dir, environ=context.environ)
        try:
            with context.db.session() as session:
                records = list(session.scalars(select(KeyRecord).order_by(KeyRecord.id)))
                for record in records:
                    check_key(
                        stores.get(record.store),
                        handle=record.handle,
                        algorithm=KeyAlgorithm(record.algorithm),
                        public_key_der=record.public_key_der,
                        label=record.label,
                    )
                    _say(f"ok  {record.label}: {record.algorithm} in store {record.store!r}")
        finally:
            stores.close()
    _say(f"{len(records)} key(s) usable and matching their records")
    return 0


def issue(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Operator issuance: a CSR in, the certificate chain out (PEM)."""
    from candor.audit import AuditLog
    from candor.cli.clock_edge import open_watch
    from candor.cli.context import build_signer, fault_pause
    from candor.issuance import parse_csr
    from candor.ra import operator_order

    csr = _read_input(args.csr)
    parsed = parse_csr(csr)
    with open_context(data_dir_from(args.data_dir, environ), environ) as context:
        stores = KeyStores(context.config.keys.stores, base_dir=context.data_dir, environ=context.environ)
        ct = ct_edge.transparency(context, None)  # the logs are reached over HTTP (candor serve runs its own)
        try:
            sct_source = ct.submitter if ct is not None else None
            watch = open_watch(context)  # WS-08e: nothing is signed on a clock its sources do not confirm
            signer = build_signer(
                context, stores, on_phase=fault_pause(environ), sct_source=sct_source, clock_watch=watch
            )
            for note in signer.reconcile():
                _say(f"reconciled: {note}", err=True)
            with context.db.session() as session:
                order = operator_order(
                    session,
                    audit=AuditLog(context.clock),
                    actor=context.actor,
                    issuer_name=args.issuer,
                    identifiers=parsed.identifiers,
                    profile=args.profile,
                    account_label=args.account,
                    now=context.clock.now(),
                )
                order_id = order.id
            chain = signer.finalize(order_id, csr)
            if ct is not None:
                ct.submit_final(chain)
        finally:
            if ct is not None:
                ct.close()
            stores.close()
    if args.out:
        Path(args.out).write_bytes(chain.pem())
        _say(f"issued serial {chain.certificate.serial_number:x} (order {order_id}) to {args.out}", err=True)
    else:
        sys.stdout.write(chain.pem().decode("ascii"))
    return 0


def inspect(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Print a certificate and what pkilint finds in it."""
    from candor.cli.render import render_certificate

    data = _read_input(args.certificate)
    _say(render_certificate(data))
    return 0


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CandorError(ErrorKind.CONFIG, f"{path}: cannot be read: {exc.strerror}") from None


def revoke(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from candor.audit import AuditLog
    from candor.revocation import parse_reason
    from candor.revocation import revoke as revoke_serial
    from candor.storage import repositories

    reason = parse_reason(args.reason)
    try:
        serial = int(args.serial.replace(":", ""), 16)
    except ValueError:
        raise CandorError(ErrorKind.CONFIG, f"--serial {args.serial!r} is not a hexadecimal number") from None
    with open_context(data_dir_from(args.data_dir, environ), environ) as context, context.db.session() as session:
        issuer = repositories.issuer_by_name(session, args.issuer)
        if issuer is None:
            raise CandorError(ErrorKind.NOT_FOUND, f"no issuer named {args.issuer!r}")
        revoked = revoke_serial(
            session,
            audit=AuditLog(context.clock),
            actor=context.actor,
            issuer=issuer,
            serial=serial,
            reason=reason,
            now=context.clock.now(),
        )
    for entry in revoked:
        _say(f"revoked {entry} ({reason.rfc_name})")
    return 0
