"""Settings from the environment, and the refusal of weak secrets in production."""

from __future__ import annotations

import dataclasses
import multiprocessing
import re
from pathlib import Path

import pytest

from service.config import ConfigError, Settings

STRONG = "k3Y-9fQ2-xW7p-Lm4Z-aB8c-Rt5V-nE1s-Hd6G"


def test_production_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CONDUIT_SECRET_KEY"):
        Settings.from_env({"CONDUIT_ENV": "production", "CONDUIT_INSTANCE_PATH": str(tmp_path)})


@pytest.mark.parametrize("secret", ["changeme", "short-secret", "a" * 64])
def test_production_refuses_a_weak_secret(tmp_path: Path, secret: str) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env({"CONDUIT_ENV": "production", "CONDUIT_SECRET_KEY": secret})


def test_production_accepts_a_strong_secret() -> None:
    settings = Settings.from_env({"CONDUIT_ENV": "production", "CONDUIT_SECRET_KEY": STRONG})

    assert settings.secret_key == STRONG


def test_development_generates_a_secret_once_and_keeps_it(tmp_path: Path) -> None:
    env = {"CONDUIT_INSTANCE_PATH": str(tmp_path)}

    first, second = Settings.from_env(env), Settings.from_env(env)

    assert first.secret_key == second.secret_key and len(first.secret_key) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def _secret_in(path: str) -> str:
    return Settings.from_env({"CONDUIT_INSTANCE_PATH": path}).secret_key


def test_development_secret_is_the_same_for_workers_starting_together(tmp_path: Path) -> None:
    with multiprocessing.get_context("fork").Pool(4) as pool:
        secrets = pool.map(_secret_in, [str(tmp_path)] * 8)

    assert len(set(secrets)) == 1


def test_default_database_is_sqlite_in_the_instance_folder(tmp_path: Path) -> None:
    settings = Settings.from_env({"CONDUIT_INSTANCE_PATH": str(tmp_path)})

    assert settings.database_url == f"sqlite:///{tmp_path / 'conduit.db'}"
    assert settings.auto_migrate is True


def test_postgresql_is_not_migrated_automatically_by_default(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"CONDUIT_INSTANCE_PATH": str(tmp_path), "CONDUIT_DATABASE_URL": "postgresql+psycopg://u:p@h/db"}
    )

    assert settings.auto_migrate is False


@pytest.mark.parametrize(("name", "value"), [("TOKEN_TTL", "soon"), ("AUTO_MIGRATE", "maybe"), ("ENV", "staging")])
def test_malformed_setting_is_refused_with_its_name(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env({"CONDUIT_INSTANCE_PATH": str(tmp_path), f"CONDUIT_{name}": value})


def test_repr_hides_the_secret_and_the_database_password(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"CONDUIT_ENV": "production", "CONDUIT_SECRET_KEY": STRONG, "CONDUIT_DATABASE_URL": "postgresql://u:pw@h/db"}
    )

    assert STRONG not in repr(settings) and "pw" not in repr(settings)


def test_production_limits_logins_registrations_and_writes_by_default() -> None:
    settings = Settings(env="production", secret_key="a-strong-production-secret-0123456789-xyz")

    assert (settings.ratelimit_login, settings.ratelimit_register, settings.ratelimit_writes) == (
        "10/minute;50/hour",
        "5/minute;50/hour",
        "60/minute;1000/hour",
    )
    assert settings.ratelimit_default == "300/minute"


def test_development_keeps_one_generous_limit_and_none_per_operation(tmp_path: Path) -> None:
    settings = Settings.from_env({"CONDUIT_INSTANCE_PATH": str(tmp_path)})

    assert settings.env == "development" and settings.ratelimit_default == "6000/minute"
    assert (settings.ratelimit_login, settings.ratelimit_register, settings.ratelimit_writes) == ("", "", "")


def test_a_limit_set_explicitly_wins_over_the_environments_default(tmp_path: Path) -> None:
    settings = Settings.from_env({"CONDUIT_INSTANCE_PATH": str(tmp_path), "CONDUIT_RATELIMIT_LOGIN": "3/minute"})

    assert settings.ratelimit_login == "3/minute"


def _readme_settings() -> dict[str, str]:
    """``CONDUIT_<NAME>`` → its default cell, from the README's settings table."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    return dict(re.findall(r"^\| `CONDUIT_(\w+)` \| ([^|]*) \|", readme, flags=re.MULTILINE))


def test_the_readme_table_lists_exactly_the_declared_settings() -> None:
    declared = {f.name.upper() for f in dataclasses.fields(Settings)}

    assert set(_readme_settings()) == declared


@pytest.mark.parametrize("setting", dataclasses.fields(Settings), ids=lambda f: f.name)
def test_the_readme_states_each_declared_default(setting: dataclasses.Field[object]) -> None:
    cell = _readme_settings()[setting.name.upper()]
    default = setting.default
    if isinstance(default, tuple):
        default = ",".join(default)
    if isinstance(default, bool):
        default = str(default).lower()

    # Defaults resolved from other settings ("" or None: the environment, the instance folder) are described instead.
    assert f"`{default}`" in cell or default in ("", None) or str(default) in cell
