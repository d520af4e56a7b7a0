"""Escalation policy: reasons for a handoff with their evidence, and the queue they lead to."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from faq.model import Candidate, Entry
from handoff.rules import REASON_CODES, HandoffRules, KeywordRule, Priority, normalize_text

logger = logging.getLogger(__name__)

__all__ = ["REASON_CODES", "Reason", "Route", "keyword_reasons", "person_request", "route"]


@dataclass(frozen=True)
class Reason:
    """Why a conversation goes to a person: a code of REASON_CODES, a detail, and the evidence for it.

    Same three fields as handoff.escalation.Reason, so the two can be unified.
    """

    code: str
    detail: str = ""
    evidence: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.code not in REASON_CODES:
            raise ValueError(f"unknown handoff reason '{self.code}' (known: {', '.join(REASON_CODES)})")

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "detail": self.detail, "evidence": list(self.evidence)}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Reason:
        raw = data.get("evidence") or ()
        evidence = tuple(str(e) for e in raw) if isinstance(raw, list | tuple) else (str(raw),)
        return cls(str(data["code"]), str(data.get("detail", "")), evidence)


@dataclass(frozen=True)
class Route:
    """Where a handoff goes: functional (department) and hierarchical (tier) routing, and how urgently."""

    department: str
    tier: int
    priority: Priority
    reasons: tuple[Reason, ...] = field(default=())


def low_confidence(confidence: float, candidates: Sequence[Candidate] = ()) -> Reason:
    shown = tuple(f"{c.entry_id}={c.score:.2f}" for c in candidates[:3])
    return Reason("low_confidence", f"confidence {confidence:.2f} after clarifying", shown)


def misunderstanding(times: int, texts: Sequence[str] = ()) -> Reason:
    shown = tuple(t[:200] for t in texts[-3:])
    return Reason("repeated_misunderstanding", f"not understood {times} times in a row", shown)


def upset(score: float, words: Iterable[str] = ()) -> Reason:
    return Reason("upset", f"mood score {score:.2f}", tuple(words))


def negative_feedback(entry_id: str, request: str) -> Reason:
    return Reason("negative_feedback", f"answer '{entry_id}' did not help", (request[:200],))


def topic_rule(entry: Entry) -> Reason:
    rule = entry.handoff
    where = f"{rule.department} tier {rule.tier}" if rule else "its department"
    return Reason("topic_rule", f"entry '{entry.id}' hands off to {where}", (entry.id,))


def sla_breach(kind: str, seconds: float) -> Reason:
    return Reason("sla_breach", f"{kind} target missed by {seconds:.0f}s", (kind,))


def _search(patterns: Iterable[re.Pattern[str]], text: str) -> str | None:
    for pattern in patterns:
        m = pattern.search(text)
        if m:
            return str(m.group(0))
    return None


def _langs_first(lang: str | None, available: Iterable[str]) -> list[str]:
    # The customer's language first; customers switch languages, so the others are tried too.
    names = set(available)
    rest = sorted(names - {lang} if lang else names)
    return [lang, *rest] if lang and lang in names else rest


def person_request(text: str, lang: str | None, rules: HandoffRules) -> Reason | None:
    """The reason "asked for a person" with the words that said so, or None."""
    norm = normalize_text(text)
    if not rules.person_screen.search(norm):
        return None
    for code in _langs_first(lang, rules.person_phrases):
        found = _search(rules.person_phrases[code], norm)
        if found:
            return Reason("asked_for_person", f"asked for a person ({code})", (found,))
    return None


def _rule_hit(rule: KeywordRule, norm: str, lang: str | None) -> str | None:
    if any(_search(patterns, norm) for patterns in rule.unless.values()):
        return None
    for code in _langs_first(lang, rule.patterns):
        found = _search(rule.patterns[code], norm)
        if found:
            return found
    return None


def keyword_reasons(text: str, lang: str | None, rules: HandoffRules) -> list[Reason]:
    """One "keyword_rule" reason per rule of the rules file that the text matches (detail = rule name)."""
    norm = normalize_text(text)
    out: list[Reason] = []
    if not rules.keyword_screen.search(norm):
        return out
    for rule in rules.keyword_rules:
        found = _rule_hit(rule, norm, lang)
        if found:
            out.append(Reason("keyword_rule", rule.name, (found,)))
    return out


def _rule(rules: HandoffRules, reason: Reason) -> KeywordRule | None:
    if reason.code != "keyword_rule":
        return None
    return next((r for r in rules.keyword_rules if r.name == reason.detail), None)


def _department(rules: HandoffRules, reasons: Sequence[Reason], entry: Entry | None, default: str) -> str:
    ranked = sorted(
        (r for x in reasons if (r := _rule(rules, x)) and r.department),
        key=lambda r: -rules.priority(r.priority).points,
    )
    candidates = [
        ranked[0].department if ranked else None,
        entry.handoff.department if entry and entry.handoff else None,
        entry.department if entry else None,
    ]
    for name in candidates:
        if name and name in rules.departments:
            return name
        if name:
            logger.warning("handoff department '%s' is not in %s; using '%s'", name, rules.source, default)
    return default


def route(
    reasons: Sequence[Reason], rules: HandoffRules, default_department: str, entry: Entry | None = None
) -> Route:
    """Functional routing picks the department, hierarchical routing the tier; the reasons set the priority.

    Department: a matching keyword rule's, else the FAQ entry's handoff rule, else the entry's own,
    else the default. Tier and priority: the highest any reason (or its rule) asks for.
    """
    if not reasons:
        raise ValueError("a handoff needs at least one reason")
    tiers = [1]
    levels = [rules.priorities[0]]
    for reason in reasons:
        base = rules.reasons[reason.code]
        tiers.append(base.tier)
        levels.append(rules.priority(base.priority))
        if (rule := _rule(rules, reason)) is not None:
            tiers.append(rule.tier)
            levels.append(rules.priority(rule.priority))
        if reason.code == "topic_rule" and entry is not None and entry.handoff is not None:
            tiers.append(entry.handoff.tier)
    department = _department(rules, reasons, entry, default_department)
    priority = max(levels, key=lambda p: p.points)
    return Route(department, max(tiers), priority, tuple(reasons))
