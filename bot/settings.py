"""Relevo's one typed settings object, read once at start from relevo.toml and the environment."""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ENV_PREFIX = "RELEVO_"
# Environment variables that are not settings keys but name where settings live, or that
# DESIGN.md fixes by their conventional names.
ENV_ALIASES = {
    "REDIS_URL": ("store", "redis_url"),
    "TELEGRAM_BOT_TOKEN": ("telegram", "token"),
}
ENV_NOT_SETTINGS = frozenset({"RELEVO_CONFIG"})
# Secrets read only from their conventional variable: a token in relevo.toml ends up in backups and
# version control.
ENV_ONLY = {("telegram", "token"): "the bot token is read only from TELEGRAM_BOT_TOKEN"}
_WHOLE = re.compile(r"[+-]?[0-9]+")
# What redis-py's from_url accepts; anything else would end start-up in its ValueError.
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def redact_url(url: str) -> str:
    """The URL without its password, for logs and messages (the userinfo before the last '@' goes)."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"


class SettingsError(ValueError):
    """A setting is unknown or has a value of the wrong kind; the message names key, value and source."""


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    # Origins allowed to open the widget WebSocket; empty = same origin as the server only.
    allowed_origins: tuple[str, ...] = ()
    # Addresses of reverse proxies whose X-Forwarded-For is believed (login lockout per client).
    trusted_proxies: tuple[str, ...] = ()
    max_message_chars: int = 2000
    messages_per_second: float = 5.0
    message_burst: int = 10
    # New widget sessions (a hello without a valid session) per client address per minute, each process.
    new_sessions_per_minute: float = 30.0
    # Widget sockets open at once from one client address, in each process, hello or not yet.
    sockets_per_address: int = 50
    session_secret: str = ""
    session_ttl_days: int = 30
    # Longest a console sign-in lasts however busy it is (the 12 h idle expiry slides on every request).
    console_session_max_hours: int = 12
    # Mark the console cookie Secure on every response, not only on those to a request that came over
    # HTTPS (directly, or per X-Forwarded-Proto from one of trusted_proxies).
    console_cookie_secure: bool = False
    # The demo shop page at `/` (the widget on a fake shop); off: `/` answers 404.
    demo_page: bool = True


@dataclass(frozen=True)
class StoreSettings:
    redis_url: str = ""
    data_dir: str = "data"
    # Closed conversations older than this are deleted with their transcripts (handoff/retention.py);
    # 0 keeps them for good.
    keep_closed_days: int = 90

    def describe(self, data_dir: Path) -> str:
        """Which store a command reads, for its output: the server's address without its password, or
        the embedded Redis's folder (a wrong --data starts an empty one)."""
        if self.redis_url:
            return redact_url(self.redis_url)
        return f"the embedded Redis in {data_dir.resolve()}"


@dataclass(frozen=True)
class FaqSettings:
    dir: str = "faq"
    answer_threshold: float = 0.85
    clarify_threshold: float = 0.21
    max_suggestions: int = 3
    reload: bool = True


@dataclass(frozen=True)
class MoodSettings:
    dir: str = "mood"
    threshold: float = 0.5


@dataclass(frozen=True)
class ConversationSettings:
    default_lang: Literal["en", "es"] = "en"
    misunderstandings_before_handoff: int = 2
    idle_close_minutes: float = 30.0
    history_limit: int = 200


@dataclass(frozen=True)
class HandoffSettings:
    default_department: str = "general"
    routing: Literal["manual", "auto"] = "manual"
    timezone: str = "UTC"
    # Departments, tiers, keyword rules, business hours and SLA targets: structured, so a YAML file.
    rules_file: str = "handoff.yaml"
    claim_lease_s: int = 30
    presence_ttl_s: int = 30
    ageing_per_minute: float = 1.0
    sweep_interval_s: float = 5.0


@dataclass(frozen=True)
class TelegramSettings:
    token: str = field(default="", repr=False)
    mode: Literal["polling", "webhook"] = "polling"
    base_url: str = ""
    webhook_url: str = ""
    secret_token: str = field(default="", repr=False)
    allow_groups: bool = False


@dataclass(frozen=True)
class Settings:
    business_name: str = "Relevo Shop"
    config_dir: Path = Path("config")
    server: ServerSettings = field(default_factory=ServerSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    faq: FaqSettings = field(default_factory=FaqSettings)
    mood: MoodSettings = field(default_factory=MoodSettings)
    conversation: ConversationSettings = field(default_factory=ConversationSettings)
    handoff: HandoffSettings = field(default_factory=HandoffSettings)
    telegram: TelegramSettings = field(default_factory=TelegramSettings)

    def path(self, relative: str) -> Path:
        """A path from the settings, relative to the config folder unless absolute."""
        p = Path(relative)
        return p if p.is_absolute() else self.config_dir / p

    @property
    def faq_dir(self) -> Path:
        return self.path(self.faq.dir)

    @property
    def handoff_rules(self) -> Path:
        return self.path(self.handoff.rules_file)

    @property
    def mood_dir(self) -> Path:
        return self.path(self.mood.dir)

    @property
    def data_dir(self) -> Path:
        # The data folder is relative to where Relevo runs, not to config/: config is the admin's room.
        return Path(self.store.data_dir)


def _sections() -> dict[str, type]:
    hints = typing.get_type_hints(Settings)
    return {f.name: hints[f.name] for f in dataclasses.fields(Settings) if dataclasses.is_dataclass(hints[f.name])}


def _cast(tp: Any, value: Any, where: str, key: str) -> Any:
    """Cast a TOML or environment value to the annotated type, or raise naming where it came from
    (the file, the environment variable or the command line) and the key."""
    origin = get_origin(tp)

    def bad(expected: str) -> SettingsError:
        return SettingsError(f"{where}: {key}: expected {expected}, got {value!r}")

    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise bad("one of " + ", ".join(repr(a) for a in allowed))
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise bad("a list of strings")
        return tuple(value)
    if origin in (types.UnionType, typing.Union):
        raise TypeError(f"unsupported settings type {tp}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise bad("true or false")
    if tp is int:
        # int(8080.9) would quietly be 8080, and int("2.7") an error: a fraction is refused either way.
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
            return int(value)
        raise bad("a whole number")
    if tp is float:
        if isinstance(value, bool):
            raise bad("a number")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise bad("a number") from None
        # nan passes every "at least" check (all comparisons are false) and would switch limits off.
        if not math.isfinite(number):
            raise bad("a finite number")
        return number
    if tp is str:
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if tp is Path:
        if not isinstance(value, str):
            raise bad("a path")
        return Path(value)
    raise TypeError(f"unsupported settings type {tp}")


def _build(cls: type, values: Mapping[str, tuple[Any, str]], section: str) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {name: _cast(hints[name], value, where, f"{section}.{name}") for name, (value, where) in values.items()}
    return cls(**kwargs)


def _collect_file(data: Mapping[str, Any], source: str) -> dict[str, dict[str, tuple[Any, str]]]:
    sections = _sections()
    top_fields = {f.name for f in dataclasses.fields(Settings)} - set(sections) - {"config_dir"}
    collected: dict[str, dict[str, tuple[Any, str]]] = {"": {}}
    for key, value in data.items():
        if key in sections:
            if not isinstance(value, dict):
                raise SettingsError(f"{source}: [{key}] must be a table, got {value!r}")
            known = {f.name for f in dataclasses.fields(sections[key])}
            for sub, subvalue in value.items():
                if sub not in known:
                    raise SettingsError(f"{source}: unknown setting {key}.{sub} (known: {', '.join(sorted(known))})")
                if (key, sub) in ENV_ONLY:
                    raise SettingsError(f"{source}: {key}.{sub}: {ENV_ONLY[key, sub]}")
                collected.setdefault(key, {})[sub] = (subvalue, source)
        elif key in top_fields:
            collected[""][key] = (value, source)
        else:
            raise SettingsError(f"{source}: unknown setting {key}")
    return collected


def _collect_env(env: Mapping[str, str]) -> dict[str, dict[str, tuple[Any, str]]]:
    sections = _sections()
    top_fields = {f.name for f in dataclasses.fields(Settings)} - set(sections) - {"config_dir"}
    collected: dict[str, dict[str, tuple[Any, str]]] = {"": {}}
    for name, value in env.items():
        if name in ENV_ALIASES:
            section, key = ENV_ALIASES[name]
            collected.setdefault(section, {})[key] = (value, f"environment {name}")
            continue
        if not name.startswith(ENV_PREFIX) or name in ENV_NOT_SETTINGS:
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        for section, cls in sections.items():
            if rest.startswith(section + "_"):
                key = rest[len(section) + 1 :]
                if key not in {f.name for f in dataclasses.fields(cls)}:
                    raise SettingsError(f"environment {name}: unknown setting {section}.{key}")
                if (section, key) in ENV_ONLY:
                    raise SettingsError(f"environment {name}: {ENV_ONLY[section, key]}")
                collected.setdefault(section, {})[key] = (value, f"environment {name}")
                break
        else:
            if rest not in top_fields:
                raise SettingsError(f"environment {name}: unknown setting {rest}")
            collected[""][rest] = (value, f"environment {name}")
    return collected


def config_location(explicit: str | os.PathLike[str] | None, env: Mapping[str, str]) -> tuple[Path, Path]:
    """(config folder, settings file) from --config, else RELEVO_CONFIG, else ./config.

    Either may name the folder or the relevo.toml inside it.
    """
    raw = Path(explicit) if explicit else Path(env.get("RELEVO_CONFIG") or "config")
    if raw.suffix == ".toml" or raw.is_file():
        return raw.parent, raw
    return raw, raw / "relevo.toml"


def load_settings(
    config: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    require_config: bool = False,
    **overrides: Any,
) -> Settings:
    """Read relevo.toml (if present), then RELEVO_* variables, then explicit overrides.

    `overrides` take dotted-free section dicts, e.g. server={"port": 0}; tests and the CLI use them.
    `require_config`: the default ./config must exist (commands that read handoff.yaml or a data folder).
    """
    env = os.environ if env is None else env
    config_dir, settings_file = config_location(config, env)
    if require_config and config is None and "RELEVO_CONFIG" not in env and not config_dir.is_dir():
        # Run from the wrong folder (a systemd unit without WorkingDirectory): say so before anything
        # starts, not later on handoff.yaml, and not after a new, empty ./data was made.
        raise SettingsError(
            f"no config folder here ({config_dir.absolute()} does not exist): run Relevo from its folder, "
            "or name the config folder with --config DIR or RELEVO_CONFIG"
        )
    merged: dict[str, dict[str, tuple[Any, str]]] = {"": {}}
    if settings_file.is_file():
        try:
            data = tomllib.loads(settings_file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{settings_file}: {exc}") from None
        for layer in (_collect_file(data, str(settings_file)),):
            for section, values in layer.items():
                merged.setdefault(section, {}).update(values)
    elif config is not None or "RELEVO_CONFIG" in env:
        raise SettingsError(f"{settings_file}: settings file not found")
    for section, values in _collect_env(env).items():
        merged.setdefault(section, {}).update(values)
    for key, value in overrides.items():
        if isinstance(value, dict):
            merged.setdefault(key, {}).update({k: (v, "command line") for k, v in value.items()})
        else:
            merged[""][key] = (value, "command line")
    sections = _sections()
    kwargs: dict[str, Any] = {"config_dir": config_dir}
    for section, values in merged.items():
        if section == "":
            hints = typing.get_type_hints(Settings)
            kwargs.update({k: _cast(hints[k], v, w, k) for k, (v, w) in values.items()})
        else:
            kwargs[section] = _build(sections[section], values, section)
    settings = Settings(**kwargs)

    def origin(*keys: str) -> str:
        """Where the first of these dotted keys that was set came from: an environment variable or an
        override names itself, so a bad value is not blamed on a relevo.toml that never held it."""
        for key in keys:
            section, _, name = key.rpartition(".")
            if name in merged.get(section, {}):
                return str(merged[section][name][1])
        return str(settings_file)

    _validate(settings, origin)
    return settings


def _validate(s: Settings, origin: Callable[..., str]) -> None:
    """Checks that span more than one value's type; `origin(key, ...)` names where a value came from."""
    if not 0.0 <= s.faq.clarify_threshold <= s.faq.answer_threshold <= 1.0:
        raise SettingsError(
            f"{origin('faq.clarify_threshold', 'faq.answer_threshold')}: faq.clarify_threshold "
            f"({s.faq.clarify_threshold}) must be between 0 and "
            f"faq.answer_threshold ({s.faq.answer_threshold}), which must be at most 1"
        )
    if s.store.redis_url and not s.store.redis_url.startswith(REDIS_SCHEMES):
        # The value is not echoed: it may carry a password.
        where = origin("store.redis_url")
        key = "" if where == "environment REDIS_URL" else "store.redis_url: "
        raise SettingsError(f"{where}: {key}must start with redis://, rediss:// or unix://")
    if not 0 <= s.server.port <= 65535:
        raise SettingsError(f"{origin('server.port')}: server.port: expected 0..65535, got {s.server.port}")
    if s.server.max_message_chars < 1:
        raise SettingsError(f"{origin('server.max_message_chars')}: server.max_message_chars must be at least 1")
    if s.faq.max_suggestions < 1:
        raise SettingsError(f"{origin('faq.max_suggestions')}: faq.max_suggestions must be at least 1")
    if not 0.0 <= s.mood.threshold <= 1.0:
        raise SettingsError(f"{origin('mood.threshold')}: mood.threshold: expected 0..1, got {s.mood.threshold}")
    for key, value, least in _lower_bounds(s):
        if value < least:
            raise SettingsError(f"{origin(key)}: {key}: expected at least {least}, got {value}")
    try:
        ZoneInfo(s.handoff.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"{origin('handoff.timezone')}: handoff.timezone: unknown time zone {s.handoff.timezone!r} "
            "(e.g. Europe/Madrid)"
        ) from None


def _lower_bounds(s: Settings) -> list[tuple[str, float, float]]:
    """(key, value, least allowed): a zero or negative here would stall, spin or refuse everything."""
    return [
        ("server.messages_per_second", s.server.messages_per_second, 0.1),
        ("server.message_burst", s.server.message_burst, 1),
        ("server.new_sessions_per_minute", s.server.new_sessions_per_minute, 0),  # 0: no limit
        ("server.sockets_per_address", s.server.sockets_per_address, 0),  # 0: no limit
        ("server.session_ttl_days", s.server.session_ttl_days, 1),
        ("store.keep_closed_days", s.store.keep_closed_days, 0),  # 0: keep for good
        ("server.console_session_max_hours", s.server.console_session_max_hours, 1),
        ("conversation.misunderstandings_before_handoff", s.conversation.misunderstandings_before_handoff, 1),
        ("conversation.idle_close_minutes", s.conversation.idle_close_minutes, 0.1),
        ("conversation.history_limit", s.conversation.history_limit, 1),
        ("handoff.claim_lease_s", s.handoff.claim_lease_s, 5),
        ("handoff.presence_ttl_s", s.handoff.presence_ttl_s, 5),
        ("handoff.ageing_per_minute", s.handoff.ageing_per_minute, 0),
        ("handoff.sweep_interval_s", s.handoff.sweep_interval_s, 0.1),  # 0 would sweep in a busy loop
    ]
