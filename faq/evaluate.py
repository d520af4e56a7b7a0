"""Run the bot's real FAQ policy over labelled cases and measure precision, coverage and latency."""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faq.matcher import Matcher
from faq.model import Action, KnowledgeBase
from faq.policy import Thresholds, decide

logger = logging.getLogger(__name__)

MAX_CASES = 200_000
MAX_TEXT_CHARS = 4_000


class CasesError(ValueError):
    """The cases file is not a `text,expected` CSV; the message names file and line."""


@dataclass(frozen=True)
class Case:
    text: str
    expected: str  # entry id; "" = out of scope (no entry should answer)
    lang: str | None = None  # optional `lang` column


def read_cases(path: Path) -> list[Case]:
    """Cases from a CSV with columns `text,expected` (and optionally `lang`)."""
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        if "text" not in fields or "expected" not in fields:
            raise CasesError(
                f"{path}:1: expected a header with columns text,expected; got {','.join(fields)}"
            )
        cases: list[Case] = []
        for row in reader:
            if len(cases) >= MAX_CASES:
                raise CasesError(f"{path}:{reader.line_num}: more than {MAX_CASES} cases")
            text = (row.get("text") or "").strip()[:MAX_TEXT_CHARS]
            if not text:
                raise CasesError(f"{path}:{reader.line_num}: empty text")
            lang = (row.get("lang") or "").strip() or None
            cases.append(Case(text, (row.get("expected") or "").strip(), lang))
    return cases


@dataclass
class _Tally:
    answered: int = 0
    answered_correct: int = 0
    clarified: int = 0
    clarify_hits: int = 0
    oos_answered: int = 0
    oos_clarified: int = 0
    top1: int = 0
    top3: int = 0


def _ratio(a: int, b: int) -> float:
    return round(a / b, 4) if b else 0.0


def evaluate(
    kb: KnowledgeBase, cases: Iterable[Case], thresholds: Thresholds, matcher: Matcher | None = None
) -> dict[str, Any]:
    """Metrics of the policy over the cases (definitions in DESIGN.md, `relevo faq eval`)."""
    matcher = matcher or Matcher(kb)
    known = set(kb.by_id)
    t = _Tally()
    times: list[float] = []
    n = in_scope = unknown_expected = 0
    for case in cases:
        n += 1
        start = time.perf_counter()
        decision = decide(matcher.match(case.text, case.lang), kb, thresholds)
        times.append((time.perf_counter() - start) * 1000.0)
        expected = case.expected if case.expected in known else ""
        if case.expected and not expected:
            unknown_expected += 1  # labelled with an entry the KB lacks: counted as out of scope
        ranked = [c.entry_id for c in decision.match.candidates]
        if expected:
            in_scope += 1
            t.top1 += ranked[:1] == [expected]
            t.top3 += expected in ranked[:3]
        if decision.action is Action.ANSWER:
            t.answered += 1
            assert decision.entry is not None
            t.answered_correct += bool(expected) and decision.entry.id == expected
            t.oos_answered += not expected
        elif decision.action is Action.CLARIFY:
            t.clarified += 1
            t.clarify_hits += bool(expected) and expected in [e.id for e in decision.suggestions]
            t.oos_clarified += not expected
    out_of_scope = n - in_scope
    ms = np.array(times) if times else np.zeros(1)
    return {
        "cases": n,
        "in_scope": in_scope,
        "out_of_scope": out_of_scope,
        "answered": t.answered,
        "answered_correct": t.answered_correct,
        "answer_precision": _ratio(t.answered_correct, t.answered),
        "answer_coverage": _ratio(t.answered_correct, in_scope),
        "clarified": t.clarified,
        "clarify_hits": t.clarify_hits,
        "clarify_hit_rate": _ratio(t.clarify_hits, t.clarified),
        "resolved_rate": _ratio(t.answered_correct + t.clarify_hits, in_scope),
        "unknown": n - t.answered - t.clarified,
        "oos_answered_rate": _ratio(t.oos_answered, out_of_scope),
        "oos_clarified_rate": _ratio(t.oos_clarified, out_of_scope),
        "top1_accuracy": _ratio(t.top1, in_scope),
        "top3_accuracy": _ratio(t.top3, in_scope),
        "expected_not_in_kb": unknown_expected,
        "answer_threshold": thresholds.answer,
        "clarify_threshold": thresholds.clarify,
        "max_suggestions": thresholds.max_suggestions,
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
    }
