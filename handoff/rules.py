"""The handoff rules file (departments, priorities and SLA, reasons, keyword rules) and its checks."""

from __future__ import annotations

import difflib
import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from faq.model import Problem
from handoff.hours import BusinessHours, Span, parse_spec

if TYPE_CHECKING:
    from bot.settings import Settings

logger = logging.getLogger(__name__)

# The escalation reasons the policy knows; the rules file sets a priority and starting tier for each.
REASON_CODES = (
    "low_confidence",  # the bot was unsure even after clarifying
    "repeated_misunderstanding",
    "asked_for_person",
    "upset",
    "negative_feedback",  # "No" to "did this help?" followed by a request
    "topic_rule",  # the FAQ entry (topic) says a person takes over
    "keyword_rule",  # a keyword rule of this file matched
    "sla_breach",
)
TOP_KEYS = ("departments", "priorities", "reasons", "keyword_rules", "person_phrases")
DEPARTMENT_KEYS = ("name", "hours", "holidays", "timezone")
PRIORITY_KEYS = ("name", "points", "first_reply_s", "resolution_s")
REASON_KEYS = ("priority", "tier")
RULE_KEYS = ("name", "patterns", "unless", "department", "tier", "priority")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
LANG_RE = re.compile(r"^[a-z]{2}$")
MAX_TIER = 3
MAX_FILE_BYTES = 1_000_000
MAX_PATTERN_CHARS = 200


class RulesError(ValueError):
    """The handoff rules file does not load; `problems` are `file:line: message` findings."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class Department:
    name: str
    display: Mapping[str, str]  # lang -> name shown to customers
    hours: BusinessHours = field(default_factory=BusinessHours)

    def display_in(self, lang: str) -> str:
        return (
            self.display.get(lang) or self.display.get("en") or next(iter(self.display.values()), self.name)
        )


@dataclass(frozen=True)
class Priority:
    """A priority level; `points` order the queue (and age it), the SLA targets are per level."""

    name: str
    points: int
    first_reply_s: int
    resolution_s: int


@dataclass(frozen=True)
class ReasonRule:
    priority: str
    tier: int = 1


@dataclass(frozen=True)
class KeywordRule:
    """Text matching one of `patterns` (per language) goes to `department` (None = keep) at `tier`."""

    name: str
    patterns: Mapping[str, tuple[re.Pattern[str], ...]]
    priority: str
    tier: int = 1
    department: str | None = None
    # Text matching one of these is not this case after all ("darme de baja de la newsletter").
    unless: Mapping[str, tuple[re.Pattern[str], ...]] = field(default_factory=dict)


def _any_of(patterns: Iterable[re.Pattern[str]]) -> re.Pattern[str]:
    """One pattern matching where any of `patterns` does (one that never matches when there are none)."""
    return re.compile("|".join(f"(?:{p.pattern})" for p in patterns) or "(?!)")


@dataclass(frozen=True)
class HandoffRules:
    departments: Mapping[str, Department]
    priorities: tuple[Priority, ...]  # lowest first
    reasons: Mapping[str, ReasonRule]
    keyword_rules: tuple[KeywordRule, ...] = ()
    person_phrases: Mapping[str, tuple[re.Pattern[str], ...]] = field(default_factory=dict)
    source: str = ""

    def priority(self, name: str) -> Priority:
        return next(p for p in self.priorities if p.name == name)

    @cached_property
    def keyword_screen(self) -> re.Pattern[str]:
        """Every keyword rule's patterns in one: most messages match none, and one search says so
        five times faster than trying each pattern (runs on every customer message)."""
        return _any_of(p for rule in self.keyword_rules for ps in rule.patterns.values() for p in ps)

    @cached_property
    def person_screen(self) -> re.Pattern[str]:
        """Every person phrase in one, for the same reason as keyword_screen."""
        return _any_of(p for ps in self.person_phrases.values() for p in ps)

    def raised(self, name: str) -> Priority:
        """The level above `name` (the top level stays where it is)."""
        i = [p.name for p in self.priorities].index(name)
        return self.priorities[min(i + 1, len(self.priorities) - 1)]

    def queues(self) -> list[tuple[str, int]]:
        return [(d, t) for d in self.departments for t in range(1, MAX_TIER + 1)]


@lru_cache(maxsize=1024)  # the same message is checked against the keyword rules more than once
def normalize_text(text: str) -> str:
    """Lower case, no accents, words separated by single spaces: what phrases and messages are compared on."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w]+", " ", plain).split())


def compile_phrase(phrase: str) -> re.Pattern[str]:
    """A phrase as a whole-word pattern on normalised text; a word ending in `*` matches any ending."""
    parts: list[str] = []
    for token in phrase.split():
        words = normalize_text(token.rstrip("*")).split()
        parts += [re.escape(w) for w in words]
        if words and token.endswith("*"):
            parts[-1] += r"\w*"
    return re.compile(r"\b" + r"\s+".join(parts) + r"\b")


class _Report:
    def __init__(self, file: str) -> None:
        self.file = file
        self.errors: list[Problem] = []

    def error(self, node: yaml.Node | None, message: str) -> None:
        self.errors.append(Problem(self.file, node.start_mark.line + 1 if node is not None else 1, message))


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        return None
    return yaml.SafeLoader("").construct_object(node, deep=True)


def _mapping(
    rep: _Report, node: yaml.Node, allowed: tuple[str, ...] | None, what: str
) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        rep.error(node, f"{what} must be a mapping")
        return {}
    found: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        key = _scalar(key_node)
        if not isinstance(key, str):
            rep.error(key_node, f"{what}: keys must be text, got {key!r}")
            continue
        if allowed is not None and key not in allowed:
            hint = difflib.get_close_matches(key, allowed, n=1)
            more = f" (did you mean '{hint[0]}'?)" if hint else f" (allowed: {', '.join(allowed)})"
            rep.error(key_node, f"unknown key '{key}' in {what}{more}")
            continue
        if key in found:
            rep.error(key_node, f"key '{key}' given twice in {what}")
        found[key] = value_node
    return found


def _list(rep: _Report, node: yaml.Node, what: str) -> list[yaml.Node]:
    if not isinstance(node, yaml.SequenceNode):
        rep.error(node, f"{what} must be a list")
        return []
    return list(node.value)


def _text(rep: _Report, node: yaml.Node, what: str, limit: int = MAX_PATTERN_CHARS) -> str | None:
    value = _scalar(node)
    if not isinstance(value, str) or not value.strip():
        rep.error(node, f"{what} must be non-empty text")
        return None
    if len(value) > limit:
        rep.error(node, f"{what} is longer than {limit} characters")
        return None
    return value.strip()


def _int(rep: _Report, node: yaml.Node, what: str, low: int, high: int) -> int | None:
    value = _scalar(node)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        rep.error(node, f"{what} must be a whole number from {low} to {high}")
        return None
    return value


def _name(rep: _Report, node: yaml.Node, what: str) -> str | None:
    value = _text(rep, node, what)
    if value is not None and not NAME_RE.match(value):
        rep.error(node, f"{what} '{value}' may hold only lower-case letters, digits, '-', '_' and '.'")
        return None
    return value


def _per_lang_texts(rep: _Report, node: yaml.Node, what: str) -> dict[str, list[tuple[yaml.Node, str]]]:
    out: dict[str, list[tuple[yaml.Node, str]]] = {}
    for lang, value in _mapping(rep, node, None, what).items():
        if not LANG_RE.match(lang):
            rep.error(node, f"{what}: '{lang}' is not a two-letter language code such as en or es")
            continue
        items = value.value if isinstance(value, yaml.SequenceNode) else [value]
        texts = [(n, t) for n in items if (t := _text(rep, n, f"{what}.{lang}: an entry")) is not None]
        if not texts:
            rep.error(value, f"{what}.{lang} is empty")
        out[lang] = texts
    return out


def _patterns(rep: _Report, node: yaml.Node, what: str) -> dict[str, tuple[re.Pattern[str], ...]]:
    out: dict[str, tuple[re.Pattern[str], ...]] = {}
    for lang, texts in _per_lang_texts(rep, node, what).items():
        compiled = []
        for n, text in texts:
            pattern = compile_phrase(text)
            if pattern.pattern == r"\b\b":
                rep.error(n, f"{what}.{lang}: '{text}' has no words to match")
            else:
                compiled.append(pattern)
        out[lang] = tuple(compiled)
    return out


def _hours(rep: _Report, keys: dict[str, yaml.Node], timezone: str, name: str) -> BusinessHours:
    spans: list[Span] = []
    for n in _list(rep, keys["hours"], f"department '{name}': hours") if "hours" in keys else []:
        text = _text(rep, n, f"department '{name}': hours entry")
        try:
            spans += parse_spec(text) if text else []
        except ValueError as exc:
            rep.error(n, f"department '{name}': {exc}")
    holidays: set[date] = set()
    for n in _list(rep, keys["holidays"], f"department '{name}': holidays") if "holidays" in keys else []:
        value = _scalar(n)
        if not isinstance(value, date):
            rep.error(n, f"department '{name}': holiday {value!r} is not a date like 2026-12-25")
        else:
            holidays.add(value)
    tz = timezone
    if "timezone" in keys:
        tz = _text(rep, keys["timezone"], f"department '{name}': timezone") or timezone
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(tz)
        except (ValueError, KeyError, OSError):
            rep.error(keys["timezone"], f"department '{name}': unknown time zone '{tz}'")
            tz = timezone
    return BusinessHours(tuple(spans), frozenset(holidays), tz)


def _departments(rep: _Report, node: yaml.Node, timezone: str) -> dict[str, Department]:
    out: dict[str, Department] = {}
    for name, value in _mapping(rep, node, None, "departments").items():
        if not NAME_RE.match(name):
            rep.error(
                value, f"department '{name}' may hold only lower-case letters, digits, '-', '_' and '.'"
            )
            continue
        keys = _mapping(rep, value, DEPARTMENT_KEYS, f"department '{name}'")
        display = (
            {
                lang: texts[0][1]
                for lang, texts in _per_lang_texts(rep, keys["name"], f"department '{name}': name").items()
                if texts
            }
            if "name" in keys
            else {}
        )
        out[name] = Department(name, display or {"en": name}, _hours(rep, keys, timezone, name))
    if not out and isinstance(node, yaml.MappingNode):
        rep.error(node, "departments is empty: name at least one")
    return out


def _priorities(rep: _Report, node: yaml.Node) -> list[tuple[yaml.Node, Priority]]:
    out: list[tuple[yaml.Node, Priority]] = []
    for n in _list(rep, node, "priorities"):
        keys = _mapping(rep, n, PRIORITY_KEYS, "a priority")
        missing = [k for k in PRIORITY_KEYS if k not in keys]
        if missing:
            rep.error(n, f"a priority needs {', '.join(missing)}")
            continue
        name = _name(rep, keys["name"], "priority name")
        points = _int(rep, keys["points"], f"priority '{name}': points", 0, 10_000)
        reply = _int(rep, keys["first_reply_s"], f"priority '{name}': first_reply_s", 1, 30 * 86400)
        resolution = _int(rep, keys["resolution_s"], f"priority '{name}': resolution_s", 1, 365 * 86400)
        if name is not None and points is not None and reply is not None and resolution is not None:
            out.append((n, Priority(name, points, reply, resolution)))
    seen: dict[str, Priority] = {}
    for n, p in out:
        if p.name in seen:
            rep.error(n, f"priority '{p.name}' given twice")
        seen[p.name] = p
    if not out and isinstance(node, yaml.SequenceNode):
        rep.error(node, "priorities is empty: name at least one level")
    return out


def _priority_ref(rep: _Report, node: yaml.Node, known: set[str], what: str) -> str | None:
    name = _text(rep, node, what)
    if name is not None and name not in known:
        rep.error(node, f"{what}: unknown priority '{name}' (known: {', '.join(sorted(known))})")
        return None
    return name


def _reasons(rep: _Report, node: yaml.Node, priorities: set[str]) -> dict[str, ReasonRule]:
    out: dict[str, ReasonRule] = {}
    for code, value in _mapping(rep, node, REASON_CODES, "reasons").items():
        keys = _mapping(rep, value, REASON_KEYS, f"reason '{code}'")
        if "priority" not in keys:
            rep.error(value, f"reason '{code}' needs a priority")
            continue
        prio = _priority_ref(rep, keys["priority"], priorities, f"reason '{code}'")
        tier = _int(rep, keys["tier"], f"reason '{code}': tier", 1, MAX_TIER) if "tier" in keys else 1
        if prio is not None and tier is not None:
            out[code] = ReasonRule(prio, tier)
    return out


def _keyword_rules(
    rep: _Report, node: yaml.Node, priorities: set[str], departments: set[str]
) -> list[KeywordRule]:
    out: list[KeywordRule] = []
    for n in _list(rep, node, "keyword_rules"):
        keys = _mapping(rep, n, RULE_KEYS, "a keyword rule")
        if "name" not in keys or "patterns" not in keys or "priority" not in keys:
            rep.error(n, "a keyword rule needs name, patterns and priority")
            continue
        name = _name(rep, keys["name"], "keyword rule name")
        what = f"keyword rule '{name}'"
        prio = _priority_ref(rep, keys["priority"], priorities, what)
        tier = _int(rep, keys["tier"], f"{what}: tier", 1, MAX_TIER) if "tier" in keys else 1
        dept = _text(rep, keys["department"], f"{what}: department") if "department" in keys else None
        if dept is not None and dept not in departments:
            rep.error(
                keys["department"],
                f"{what}: unknown department '{dept}' (known: {', '.join(sorted(departments))})",
            )
        patterns = _patterns(rep, keys["patterns"], f"{what}: patterns")
        unless = _patterns(rep, keys["unless"], f"{what}: unless") if "unless" in keys else {}
        if name and prio and tier is not None:
            out.append(KeywordRule(name, patterns, prio, tier, dept, unless))
    return out


def _check_text(path: Path, raw: bytes | None) -> tuple[_Report, yaml.Node | None]:
    rep = _Report(str(path))
    try:
        raw = path.read_bytes() if raw is None else raw
    except OSError as exc:
        rep.error(None, f"cannot read file: {exc.strerror}")
        return rep, None
    if len(raw) > MAX_FILE_BYTES:
        rep.error(None, f"file is larger than {MAX_FILE_BYTES} bytes")
        return rep, None
    try:
        root = yaml.compose(raw.decode("utf-8"), Loader=yaml.SafeLoader)
    except UnicodeDecodeError:
        rep.error(None, "file is not UTF-8 text")
        return rep, None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        rep.errors.append(
            Problem(rep.file, mark.line + 1 if mark else 1, f"bad YAML: {exc.problem or exc.context}")
        )
        return rep, None
    if not isinstance(root, yaml.MappingNode):
        rep.error(root, "the handoff rules file must be a mapping with departments, priorities and reasons")
        return rep, None
    return rep, root


def rules_of(settings: Settings) -> HandoffRules:
    """The rules file the settings name, read in their time zone with their default department."""
    hs = settings.handoff
    return load_rules(settings.handoff_rules, hs.timezone, hs.default_department)


def load_rules(
    path: Path, timezone: str = "UTC", default_department: str | None = None, raw: bytes | None = None
) -> HandoffRules:
    """Read and check the rules file; raise RulesError listing every `file:line: message` problem."""
    rep, root = _check_text(Path(path), raw)
    if root is None:
        raise RulesError(rep.errors)
    keys = _mapping(rep, root, TOP_KEYS, "the file")
    for required in ("departments", "priorities", "reasons"):
        if required not in keys:
            rep.error(root, f"the file needs '{required}'")
    departments = _departments(rep, keys["departments"], timezone) if "departments" in keys else {}
    prio_nodes = _priorities(rep, keys["priorities"]) if "priorities" in keys else []
    names = {p.name for _, p in prio_nodes}
    reasons = _reasons(rep, keys["reasons"], names) if "reasons" in keys else {}
    rules = (
        _keyword_rules(rep, keys["keyword_rules"], names, set(departments)) if "keyword_rules" in keys else []
    )
    phrases = _patterns(rep, keys["person_phrases"], "person_phrases") if "person_phrases" in keys else {}
    if "reasons" in keys:
        missing = [c for c in REASON_CODES if c not in reasons]
        if missing and not rep.errors:
            rep.error(keys["reasons"], f"reasons: give a priority for {', '.join(missing)}")
    if default_department is not None and departments and default_department not in departments:
        rep.error(
            keys.get("departments"),
            f"the default department '{default_department}' (settings "
            f"handoff.default_department) is not among the departments of this file",
        )
    if rep.errors:
        raise RulesError(rep.errors)
    levels = sorted((p for _, p in prio_nodes), key=lambda p: p.points)
    return HandoffRules(departments, tuple(levels), reasons, tuple(rules), phrases, str(path))
