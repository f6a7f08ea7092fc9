"""What every command needs: the data directory, its validated config, the database and key stores."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from candor.clock import Clock, SystemClock
from candor.config import CandorConfig, database_url, load_config
from candor.errors import CandorError, ErrorKind
from candor.issuance import IssuanceSettings, IssuerResolver, SctSource, Signer
from candor.issuance.signer import Phase
from candor.keys import KeyStores
from candor.storage import Database
from candor.timekeeping import ClockWatch

ENV_HOME = "CANDOR_HOME"


def data_dir_from(argument: str | None, environ: Mapping[str, str]) -> Path:
    chosen = argument or environ.get(ENV_HOME)
    if not chosen:
        raise CandorError(ErrorKind.CONFIG, f"no data directory: pass --data-dir or set {ENV_HOME}")
    return Path(chosen).expanduser().resolve()


@dataclass
class Context:
    data_dir: Path
    config: CandorConfig
    db: Database
    clock: Clock
    environ: Mapping[str, str]

    @property
    def public_dir(self) -> Path:
        return self.data_dir / "public"

    @property
    def actor(self) -> str:
        """Who runs this command, for the audit log (the operating-system user)."""
        return f"cli:{self.environ.get('USER') or self.environ.get('LOGNAME') or os.getuid()}"


@contextmanager
def open_context(data_dir: Path, environ: Mapping[str, str], *, migrate: bool = False) -> Iterator[Context]:
    if not data_dir.is_dir():
        raise CandorError(ErrorKind.CONFIG, f"data directory {data_dir} does not exist (run 'candor init')")
    config = load_config(data_dir)
    db = Database(database_url(config.database, data_dir))
    try:
        if migrate:
            db.upgrade()
        elif db.current_revision() != db.head_revision():
            raise CandorError(ErrorKind.STORAGE, "the database schema is not current; run 'candor db upgrade' first")
        yield Context(data_dir=data_dir, config=config, db=db, clock=SystemClock(), environ=environ)
    finally:
        db.dispose()


def build_signer(
    context: Context,
    stores: KeyStores,
    *,
    on_phase: Phase | None = None,
    sct_source: SctSource | None = None,
    clock_watch: ClockWatch | None = None,
) -> Signer:
    """The signer for this data directory, as configured; with *sct_source*, every precertificate is logged
    and the final certificate carries the SCTs (or nothing is finalised); with *clock_watch*, nothing is signed
    while it distrusts the clock (WS-08e)."""
    config = context.config
    settings = IssuanceSettings(
        base_url=config.server.public_base_url,
        validity=timedelta(days=config.issuance.validity_days),
        backdate=timedelta(seconds=config.issuance.backdate_seconds),
        ocsp_urls=config.issuance.ocsp_urls,
        lint_final=config.issuance.lint_final_certificate,
    )
    return Signer(
        db=context.db,
        issuers=IssuerResolver(stores, base_url=config.server.public_base_url),
        clock=context.clock,
        settings=settings,
        actor=context.actor,
        on_phase=on_phase,
        sct_source=sct_source,
        clock_watch=clock_watch,
    )


def fault_pause(environ: Mapping[str, str]) -> Phase | None:
    """Test-only: ``CANDOR_TEST_PAUSE_AT=STAGE:SECONDS`` makes the signer sleep when it reaches STAGE, so a
    test can kill the process there. Unset (the default), nothing pauses."""
    setting = environ.get("CANDOR_TEST_PAUSE_AT")
    if not setting:
        return None
    stage, _, seconds = setting.partition(":")
    delay = float(seconds or "60")

    def pause(reached: str, _order_id: int) -> None:
        if reached == stage:
            print(f"paused at {stage}", flush=True)
            time.sleep(delay)

    return pause
