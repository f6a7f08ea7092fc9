from __future__ import annotations

from pathlib import Path

import pytest

from candor.config import SecretSource, database_url, load_config, resolve_secret
from candor.defaults import CONFIG_TEMPLATE
from candor.errors import CandorError, ErrorKind


def test_the_default_config_template_is_valid(tmp_path: Path) -> None:
    (tmp_path / "candor.toml").write_text(
        CONFIG_TEMPLATE.format(port=8123, base_url="http://127.0.0.1:8123", acme_port=8486)
    )
    config = load_config(tmp_path)
    assert config.server.port == 8123
    assert set(config.keys.stores) == {"file"}


def test_relative_sqlite_path_is_inside_the_data_directory(tmp_path: Path) -> None:
    (tmp_path / "candor.toml").write_text(CONFIG_TEMPLATE.format(port=1, base_url="http://a", acme_port=2))
    url = database_url(load_config(tmp_path).database, tmp_path)
    assert url == f"sqlite:///{tmp_path.resolve()}/candor.db"


def test_secrets_come_from_a_file_or_the_given_environment(tmp_path: Path) -> None:
    (tmp_path / "pin").write_text("1234\nignored\n")
    assert resolve_secret(SecretSource(file=Path("pin")), base_dir=tmp_path, environ={}) == "1234"
    assert resolve_secret(SecretSource(env="PIN"), base_dir=tmp_path, environ={"PIN": "5678"}) == "5678"


@pytest.mark.parametrize("source", [SecretSource(env="UNSET"), SecretSource(file=Path("absent"))])
def test_a_missing_secret_names_its_source_not_a_value(tmp_path: Path, source: SecretSource) -> None:
    with pytest.raises(CandorError) as caught:
        resolve_secret(source, base_dir=tmp_path, environ={})
    assert caught.value.kind is ErrorKind.CONFIG
    assert ("UNSET" in caught.value.message) or ("absent" in caught.value.message)


@pytest.mark.parametrize(
    ("value", "accepted"), [('"none"', True), ('"auto"', True), ('"sometimes"', False), ("0", False)]
)
def test_cpu_affinity_is_none_or_auto(tmp_path: Path, value: str, accepted: bool) -> None:
    template = CONFIG_TEMPLATE.format(port=1, base_url="http://a", acme_port=2)
    assert template.count('cpu_affinity = "none"') == 1  # the template says what it defaults to
    (tmp_path / "candor.toml").write_text(template.replace('cpu_affinity = "none"', f"cpu_affinity = {value}"))
    if accepted:
        assert load_config(tmp_path).server.cpu_affinity == value.strip('"')
        return
    with pytest.raises(CandorError) as caught:
        load_config(tmp_path)
    assert caught.value.kind is ErrorKind.CONFIG and "cpu_affinity" in caught.value.message
