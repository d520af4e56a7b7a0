from pathlib import Path

import pytest

from bot.settings import SettingsError, load_settings
from tests.conftest import CONFIG_DIR


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "relevo.toml").write_text(text, encoding="utf-8")
    return tmp_path


def test_shipped_config_loads_with_its_documented_defaults() -> None:
    s = load_settings(CONFIG_DIR, env={})
    assert s.server.port == 8080
    assert s.faq_dir == CONFIG_DIR / "faq"
    assert 0 < s.faq.clarify_threshold < s.faq.answer_threshold < 1


def test_environment_overrides_file(tmp_path: Path) -> None:
    cfg = write(tmp_path, "[server]\nport = 9000\n")
    s = load_settings(cfg, env={"RELEVO_SERVER_PORT": "9100", "REDIS_URL": "redis://x:1/0",
                                "RELEVO_BUSINESS_NAME": "Tienda"})
    assert s.server.port == 9100
    assert s.store.redis_url == "redis://x:1/0"
    assert s.business_name == "Tienda"


def test_list_setting_from_environment(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, ""), env={"RELEVO_SERVER_ALLOWED_ORIGINS": "https://a.test, https://b.test"})
    assert s.server.allowed_origins == ("https://a.test", "https://b.test")


@pytest.mark.parametrize(
    ("text", "env", "needle"),
    [
        ("[server]\nport = \"eighty\"\n", {}, "server.port: expected a whole number, got 'eighty'"),
        ("[server]\nprot = 1\n", {}, "unknown setting server.prot"),
        ("[handoff]\nrouting = \"random\"\n", {}, "handoff.routing: expected one of 'manual', 'auto'"),
        ("", {"RELEVO_FAQ_RELOAD": "maybe"}, "environment RELEVO_FAQ_RELOAD: faq.reload: expected true or false"),
        # nan passes every "at least" check and would switch the per-session limit off; inf is no limit.
        ("", {"RELEVO_SERVER_MESSAGES_PER_SECOND": "nan"}, "server.messages_per_second: expected a finite number"),
        ("", {"RELEVO_HANDOFF_SWEEP_INTERVAL_S": "inf"}, "handoff.sweep_interval_s: expected a finite number"),
        ("[server]\nmessage_burst = nan\n", {}, "server.message_burst: expected a whole number, got nan"),
        # A fraction is not quietly cut to a whole number.
        ("[server]\nport = 8080.9\n", {}, "server.port: expected a whole number, got 8080.9"),
        ("", {"RELEVO_SERVER_MESSAGE_BURST": "2.7"}, "server.message_burst: expected a whole number, got '2.7'"),
        # The bot token only ever comes from TELEGRAM_BOT_TOKEN.
        ("[telegram]\ntoken = \"123:abc\"\n", {}, "telegram.token: the bot token is read only from TELEGRAM_BOT_TOKEN"),
        ("", {"RELEVO_TELEGRAM_TOKEN": "123:abc"}, "RELEVO_TELEGRAM_TOKEN: the bot token is read only from"),
        ("", {"RELEVO_FAQ_NOPE": "1"}, "unknown setting faq.nope"),
        ("[faq]\nanswer_threshold = 0.1\nclarify_threshold = 0.3\n", {}, "clarify_threshold"),
        ("[server\n", {}, "relevo.toml"),
        ("[handoff]\ntimezone = \"Europe/Madird\"\n", {}, "handoff.timezone: unknown time zone 'Europe/Madird'"),
        ("[handoff]\nsweep_interval_s = 0\n", {}, "handoff.sweep_interval_s: expected at least 0.1, got 0"),
        ("[server]\nmessage_burst = 0\n", {}, "server.message_burst: expected at least 1, got 0"),
        ("[conversation]\nidle_close_minutes = -5\n", {}, "conversation.idle_close_minutes: expected at least"),
        # A range error from the environment names the variable, not the relevo.toml that never held it.
        ("", {"RELEVO_SERVER_MESSAGE_BURST": "0"}, "environment RELEVO_SERVER_MESSAGE_BURST: server.message_burst:"),
        ("", {"RELEVO_MOOD_THRESHOLD": "2"}, "environment RELEVO_MOOD_THRESHOLD: mood.threshold: expected 0..1"),
        ("[faq]\nanswer_threshold = 0.6\n", {"RELEVO_FAQ_CLARIFY_THRESHOLD": "0.9"},
         "environment RELEVO_FAQ_CLARIFY_THRESHOLD: faq.clarify_threshold"),
    ],
)
def test_invalid_values_name_key_value_and_source(tmp_path: Path, text: str, env: dict, needle: str) -> None:
    cfg = write(tmp_path, text)
    with pytest.raises(SettingsError) as err:
        load_settings(cfg, env=env)
    assert needle in str(err.value)
    assert (str(cfg / "relevo.toml") in str(err.value)) is (not env)
    key = needle.split(":")[0] if not env and not text.startswith("[server\n") else ""
    assert not key or str(err.value).count(key) == 1, err.value  # the key is named once


def test_missing_named_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "nope", env={})


def test_settings_are_frozen() -> None:
    s = load_settings(CONFIG_DIR, env={})
    with pytest.raises(AttributeError):
        s.server.port = 1  # type: ignore[misc]


def test_token_is_not_in_repr() -> None:
    s = load_settings(CONFIG_DIR, env={"TELEGRAM_BOT_TOKEN": "123:SECRET"})
    assert s.telegram.token == "123:SECRET"
    assert "SECRET" not in repr(s)


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:s3cret@db.example:6379/0", "redis://***@db.example:6379/0"),
    ("rediss://app:s3cret@db.example/1", "rediss://***@db.example/1"),
    ("redis://app:p@ss@db.example/1", "redis://***@db.example/1"),  # an '@' in the password itself
    ("redis://db.example:6379/0", "redis://db.example:6379/0"),
])  # fmt: skip
def test_the_store_is_described_without_its_password(tmp_path: Path, url: str, shown: str) -> None:
    settings = load_settings(CONFIG_DIR, env={"REDIS_URL": url})
    assert settings.store.describe(settings.data_dir) == shown
