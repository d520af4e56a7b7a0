"""Evaluate the mood detector on labelled cases (text,upset[,lang]): precision, recall, F1, latency."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.mood.detector import MoodDetector
from faq.evaluate import csv_text


class CasesError(ValueError):
    """The cases file is not usable; the message names file and line."""


@dataclass(frozen=True)
class Case:
    text: str
    upset: bool
    lang: str | None
    line: int


def read_cases(path: Path) -> list[Case]:
    """Rows of a CSV with a header naming at least text and upset (1/0); lang is optional."""
    # The same reading as `relevo faq eval`: a BOM is fine, non-UTF-8 bytes are a file:line error.
    reader = csv.DictReader(io.StringIO(csv_text(path, CasesError), newline=""))
    missing = {"text", "upset"} - set(reader.fieldnames or ())
    if missing:
        raise CasesError(f"{path}:1: missing column(s) {', '.join(sorted(missing))}")
    cases = []
    for row in reader:
        label = (row.get("upset") or "").strip()
        if label not in ("0", "1"):
            raise CasesError(f"{path}:{reader.line_num}: upset must be 1 or 0, got {label!r}")
        lang = (row.get("lang") or "").strip() or None
        cases.append(Case(row.get("text") or "", label == "1", lang, reader.line_num))
    return cases


def _figures(pairs: Iterable[tuple[bool, bool]]) -> dict[str, Any]:
    tp = fp = fn = n = positives = 0
    for expected, flagged in pairs:
        n += 1
        positives += expected
        tp += expected and flagged
        fp += flagged and not expected
        fn += expected and not flagged
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "cases": n,
        "upset": positives,
        "flagged": tp + fp,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
    }


def evaluate(detector: MoodDetector, cases: list[Case]) -> dict[str, Any]:
    """Score each case alone (no history); flagged = score >= the detector's threshold."""
    results: list[tuple[Case, bool]] = []
    times: list[float] = []
    for case in cases:
        start = time.perf_counter()
        reading = detector.score(case.text, case.lang)
        times.append((time.perf_counter() - start) * 1000.0)
        results.append((case, reading.upset))
    report = _figures((c.upset, flagged) for c, flagged in results)
    langs = sorted({c.lang for c in cases if c.lang})
    report["by_lang"] = {lang: _figures((c.upset, f) for c, f in results if c.lang == lang) for lang in langs}
    report["threshold"] = detector.threshold
    report.update(_latency(times))
    return report


def _latency(times: list[float]) -> dict[str, float]:
    if not times:
        return {"p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    ordered = sorted(times)

    def pct(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 4)

    return {"p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": round(ordered[-1], 4)}
