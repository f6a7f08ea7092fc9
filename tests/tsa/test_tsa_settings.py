"""``[tsa]`` is validated at start-up, with one line naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from candor.config import load_config
from candor.errors import CandorError
from support import make_home


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ('[tsa]\npolicy = "1.3.6.1.4.1.32473.1.1"\naccuracy_ms = 500\n', "tsa.accuracy_ms is finer than clock"),
        ('[tsa]\npolicy = "1.3.6.1.4.1.32473.1.1"\naccuracy_ms = 1500\n[clock]\nmax_offset_seconds = 2\n', "finer"),
        ('[tsa]\npolicy = "1.3.6.1.4.1.32473.1.1"\nprecision_digits = 7\n', "tsa.precision_digits"),
        ('[tsa]\npolicy = "1.3.6.1.4.1.32473.1.1"\nordering = true\n', "tsa.ordering"),
        ('[tsa]\npolicy = "1.45.6"\n', "second arc must be below 40"),
        ('[tsa]\npolicy = "timestamp"\n', "not a dotted OBJECT IDENTIFIER"),
        ("[tsa]\naccuracy_ms = 1000\n", "tsa.policy"),
    ],
)
def test_a_bad_tsa_section_stops_start_up_in_one_line(tmp_path: Path, section: str, fragment: str) -> None:
    home = make_home(tmp_path)
    with (home / "candor.toml").open("a") as config:
        config.write(section)
    with pytest.raises(CandorError, match=fragment) as refused:
        load_config(home)
    assert "\n" not in refused.value.message


def test_no_tsa_section_means_no_tsa_and_the_template_s_is_valid(tmp_path: Path) -> None:
    assert load_config(make_home(tmp_path)).tsa is None
    from candor.defaults import CONFIG_TEMPLATE

    (tmp_path / "candor.toml").write_text(
        CONFIG_TEMPLATE.format(port=8080, base_url="http://127.0.0.1:8080", acme_port=8443)
    )
    settings = load_config(tmp_path).tsa
    assert settings is not None and settings.policy == "1.3.6.1.4.1.32473.1.1" and settings.accuracy_ms == 1000
