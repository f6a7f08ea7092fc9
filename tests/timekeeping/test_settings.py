"""[clock] is validated at start-up: one line naming the field and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from candor.config import load_config
from candor.errors import CandorError
from support import make_home


def config_error(tmp_path: Path, clock: str) -> str:
    home = make_home(tmp_path / "home")
    with (home / "candor.toml").open("a") as out:
        out.write(f"\n[clock]\n{clock}\n")
    with pytest.raises(CandorError) as refused:
        load_config(home)
    return refused.value.message


def test_the_defaults_are_the_csbr_figures(tmp_path: Path) -> None:
    settings = load_config(make_home(tmp_path / "home")).clock
    assert settings.sources == ()
    rules = settings.rules()
    assert (rules.max_offset, rules.step, rules.max_sync_age) == (1.0, 1.0, 86_400.0)
    assert rules.stale_after == 3 * 16 + 5  # three polls and one chronyc timeout


@pytest.mark.parametrize(
    ("clock", "message"),
    [
        ('sources = ["ntp"]', '"ntp" in sources and ntp_servers go together'),
        ('sources = ["chrony"]\nntp_servers = ["ntp.example.net"]', '"ntp" in sources and ntp_servers go together'),
        ('sources = ["system", "chrony"]', '"system" trusts this host\'s clock as it is'),
        ('sources = ["chrony", "chrony"]', "names a source twice"),
        ('sources = ["gps"]', "clock.sources.0: must be one of 'chrony', 'ntp' or 'system'"),
        ('sources = ["ntp"]\nntp_servers = ["a:b"]', "clock.ntp_servers: 'a:b': the port must be a number"),
        ('sources = ["ntp"]\nntp_servers = ["a", "a"]', "named twice"),
        ("step_seconds = 2", "clock.step_seconds: Input should be less than or equal to 1"),
        ("max_sync_age_hours = 25", "clock.max_sync_age_hours: Input should be less than or equal to 24"),
        ("max_offset_seconds = 0", "clock.max_offset_seconds: Input should be greater than 0"),
        ("chronyc = []", "clock.chronyc"),
        ("polling = 3", "clock.polling: Extra inputs are not permitted"),
    ],
)
def test_bad_clock_settings_are_refused_at_start_up(tmp_path: Path, clock: str, message: str) -> None:
    assert message in config_error(tmp_path, clock)
