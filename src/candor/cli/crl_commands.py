"""``candor crl generate``: make, check and publish CRLs now; and the CRL loop ``candor serve`` runs.

Without options, the shards that are due (never published, with a revocation since their CRL, or older than
the regeneration period) of every TLS issuing CA and time-stamping CA, as the loop would; ``--issuer NAME``
limits the run to one issuer, ``--all`` regenerates every shard whether due or not. One line per shard shows
progress (entries/s); the exit code is 0 when everything chosen was published, 4 (ErrorKind.LINT) when a check
refused a CRL.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta

from candor.cli.context import Context, data_dir_from, open_context
from candor.errors import CandorError, ErrorKind
from candor.issuance import IssuerResolver
from candor.keys import KeyStores
from candor.revocation.crl.generate import CrlGenerator, CrlSettings, Progress, ShardResult
from candor.revocation.crl.schedule import CrlScheduler, run_crl_loop
from candor.timekeeping import ClockWatch


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    crl = sub.add_parser("crl", help="certificate revocation lists")
    crl_sub = crl.add_subparsers(dest="crl_command", required=True, metavar="ACTION")
    generate = crl_sub.add_parser("generate", help="generate, check and publish the CRL shards that are due")
    generate.add_argument("--issuer", help="only this TLS issuing CA or time-stamping CA, by name")
    generate.add_argument("--all", action="store_true", help="every shard, not only those due")
    generate.set_defaults(handler=crl_generate)


def crl_generator(
    context: Context, stores: KeyStores, *, progress: Progress | None = None, clock_watch: ClockWatch | None = None
) -> CrlGenerator:
    """The CRL generator of this data directory (its URLs are the signer's: ``server.public_base_url``)."""
    base_url = context.config.server.public_base_url
    return CrlGenerator(
        db=context.db,
        issuers=IssuerResolver(stores, base_url=base_url),
        clock=context.clock,
        public_dir=context.public_dir,
        settings=CrlSettings(
            base_url=base_url,
            validity=timedelta(days=context.config.crl.validity_days),
            regenerate_every=timedelta(hours=context.config.crl.regenerate_hours),
            dirty_within=timedelta(seconds=context.config.crl.revocation_delay_seconds),
        ),
        actor=context.actor,
        progress=progress,
        clock_watch=clock_watch,
    )


def crl_loop_task(
    context: Context, stores: KeyStores, clock_watch: ClockWatch | None = None
) -> Callable[[], Awaitable[None]]:
    """For ``candor serve``'s primary worker: a background task running :func:`run_crl_loop` in a thread,
    stopped when the task is cancelled."""
    from candor.server import threaded_task

    generator = crl_generator(context, stores, clock_watch=clock_watch)
    return threaded_task(lambda stop: run_crl_loop(generator, stop))


def crl_generate(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from candor.cli.clock_edge import open_watch
    from candor.timekeeping import require_trustworthy

    with open_context(data_dir_from(args.data_dir, environ), environ) as context:
        stores = KeyStores(context.config.keys.stores, base_dir=context.data_dir, environ=context.environ)
        try:
            watch = open_watch(context)  # WS-08e: no CRL is signed on a clock its sources do not confirm
            require_trustworthy(watch, "CRLs")  # refused as such (exit 9), not counted as lint refusals (exit 4)
            generator = crl_generator(context, stores, progress=_print_progress, clock_watch=watch)
            if args.all:
                chosen = [generator.issuer_id(args.issuer)] if args.issuer else generator.crl_issuers()
                results, failed = _generate_all(generator, chosen)
            else:
                results, failed = _generate_due(generator, args.issuer)
        finally:
            stores.close()
    entries = sum(r.entries for r in results)
    seconds = sum(r.seconds for r in results)
    print(f"crl: {len(results)} CRL(s), {entries:,} entries in {seconds:.1f} s; {failed} refused", flush=True)
    return EXIT_REFUSED if failed else 0


EXIT_REFUSED = 4  # the same code as ErrorKind.LINT


def _generate_all(generator: CrlGenerator, issuer_ids: list[int]) -> tuple[list[ShardResult], int]:
    results: list[ShardResult] = []
    failed = 0
    for issuer_id in issuer_ids:
        issuer = generator.prepare(issuer_id)
        for shard, outcome in generator.generate_shards(issuer, range(issuer.crl_shards)):
            if not isinstance(outcome, CandorError):
                results.append(outcome)
                continue
            if outcome.kind not in (ErrorKind.LINT, ErrorKind.KEY):
                raise outcome
            print(f"crl {issuer.name}/{shard}: REFUSED: {outcome.message}", file=sys.stderr, flush=True)
            failed += 1
    return results, failed


def _generate_due(generator: CrlGenerator, issuer: str | None) -> tuple[list[ShardResult], int]:
    only = generator.issuer_id(issuer) if issuer else None
    due = [(i, s) for i, s in generator.due(generator.clock.now()) if only is None or i == only]
    results = CrlScheduler(generator).tick() if only is None else _generate_listed(generator, due)
    return results, len(due) - len(results)


def _generate_listed(generator: CrlGenerator, due: list[tuple[int, int]]) -> list[ShardResult]:
    results = []
    for issuer_id in sorted({i for i, _ in due}):
        issuer = generator.prepare(issuer_id)
        for shard, outcome in generator.generate_shards(issuer, [s for i, s in due if i == issuer_id]):
            if isinstance(outcome, CandorError):
                print(f"crl {issuer.name}/{shard}: REFUSED: {outcome.message}", file=sys.stderr, flush=True)
            else:
                results.append(outcome)
    return results


def _print_progress(result: ShardResult) -> None:
    rate = result.entries / result.seconds if result.seconds > 0 else 0.0
    state = "published" if result.published else "discarded (a newer CRL is published)"
    print(
        f"crl {result.issuer}/{result.shard}: number {result.number}, {result.entries:,} entries "
        f"({result.linted:,} linted), {result.seconds:.2f} s, {rate:,.0f} entries/s, {state}",
        flush=True,
    )


__all__ = ["add_parser", "crl_generate", "crl_generator", "crl_loop_task"]
