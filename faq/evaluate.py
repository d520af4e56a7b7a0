"""Run the bot's real FAQ policy over labelled cases and measure precision, coverage and latency."""

from __future__ import annotations

import codecs
import csv
import difflib
import io
import logging
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faq.matcher import Matcher
from faq.model import Action, KnowledgeBase
from faq.policy import Thresholds, decide

logger = logging.getLogger(__name__)

MAX_CASES = 200_000
MAX_TEXT_CHARS = 4_000
MAX_UNKNOWN_SHOWN = 10


class CasesError(ValueError):
    """The cases file is not a `text,expected` CSV; the message names file and line."""


@dataclass(frozen=True)
class Case:
    text: str
    expected: str  # entry id; "" = out of scope (no entry should answer)
    lang: str | None = None  # optional `lang` column
    line: int = field(default=0, compare=False)  # line in the cases file, for messages


def csv_text(path: Path, error: type[ValueError]) -> str:
    """The file's text for the csv module: UTF-8, with or without the BOM that Excel's "CSV UTF-8"
    writes. Anything else raises `error` naming the line and byte, since a guessed encoding would
    silently turn accents into other letters and skew what is measured."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise error(f"{path}:0: cannot read: {exc.strerror or exc}") from None
    skip = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        return raw[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = skip + exc.start
        line = raw[:at].count(b"\n") + 1
        raise error(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[at]:02x} at byte offset {at}); "
            "save the file as UTF-8 (in Excel: CSV UTF-8)"
        ) from None


def read_cases(path: Path, known_ids: Collection[str] | None = None) -> list[Case]:
    """Cases from a CSV with columns `text,expected` (and optionally `lang`).

    With `known_ids` (the knowledge base's), an `expected` id outside them is an error: counted as
    out of scope it would score the bot's right answer as a wrong one, with nothing to show for it.
    """
    reader = csv.DictReader(io.StringIO(csv_text(path, CasesError), newline=""))
    fields = reader.fieldnames or []
    if "text" not in fields or "expected" not in fields:
        raise CasesError(f"{path}:1: expected a header with columns text,expected; got {','.join(fields)}")
    cases: list[Case] = []
    for row in reader:
        if len(cases) >= MAX_CASES:
            raise CasesError(f"{path}:{reader.line_num}: more than {MAX_CASES} cases")
        text = (row.get("text") or "").strip()[:MAX_TEXT_CHARS]
        if not text:
            raise CasesError(f"{path}:{reader.line_num}: empty text")
        lang = (row.get("lang") or "").strip() or None
        cases.append(Case(text, (row.get("expected") or "").strip(), lang, reader.line_num))
    if known_ids is not None:
        _check_expected(path, cases, known_ids)
    return cases


def _check_expected(path: Path, cases: list[Case], known_ids: Collection[str]) -> None:
    unknown = [c for c in cases if c.expected and c.expected not in known_ids]
    if not unknown:
        return
    known = sorted(known_ids)
    lines = []
    for c in unknown[:MAX_UNKNOWN_SHOWN]:
        hint = difflib.get_close_matches(c.expected, known, n=1)
        mean = f" (did you mean '{hint[0]}'?)" if hint else ""
        lines.append(f"{path}:{c.line}: unknown entry id '{c.expected}'{mean}")
    if len(unknown) > MAX_UNKNOWN_SHOWN:
        lines.append(f"... and {len(unknown) - MAX_UNKNOWN_SHOWN} more")
    lines.append(
        f"{path}: {len(unknown)} case(s) expect an entry the knowledge base does not have; "
        "fix the id, or leave expected empty for an out-of-scope question"
    )
    raise CasesError("\n".join(lines))


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
