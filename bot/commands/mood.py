"""`relevo mood eval`: precision, recall, F1 and latency of the mood detector on labelled cases."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bot.mood import MoodConfigError, MoodDetector
from bot.mood.evaluate import CasesError, evaluate, read_cases
from bot.settings import load_settings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("mood", help="mood (upset) detector tools")
    mood_sub = p.add_subparsers(dest="mood_command", required=True)
    ev = mood_sub.add_parser("eval", help="score labelled cases (CSV: text,upset[,lang])")
    ev.add_argument(
        "--cases", required=True, type=Path, help="CSV with columns text,upset (1/0), optional lang"
    )
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument("--threshold", type=float, help="upset threshold (default: mood.threshold)")
    ev.add_argument("--lexicons", type=Path, help="mood lexicon folder (default: mood.dir)")
    ev.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    threshold = settings.mood.threshold if args.threshold is None else args.threshold
    if not 0.0 <= threshold <= 1.0:
        print(f"relevo mood eval: --threshold must be from 0 to 1, got {threshold}", file=sys.stderr)
        return 2
    try:
        detector = MoodDetector.from_dir(
            args.lexicons or settings.mood_dir, threshold, settings.conversation.default_lang
        )
        cases = read_cases(args.cases)
    except (MoodConfigError, CasesError) as exc:
        print(f"relevo mood eval: {exc}", file=sys.stderr)
        return 1
    report = evaluate(detector, cases)
    if args.json:
        print(json.dumps(report))
    else:
        _print_table(report)
    return 0


def _print_table(report: dict[str, Any]) -> None:
    print(f"cases {report['cases']}  upset {report['upset']}  threshold {report['threshold']}")
    rows = [("all", report), *report["by_lang"].items()]
    print(f"{'':6} {'cases':>6} {'precision':>10} {'recall':>8} {'f1':>6}")
    for name, r in rows:
        print(f"{name:6} {r['cases']:>6} {r['precision']:>10.3f} {r['recall']:>8.3f} {r['f1']:>6.3f}")
    print(f"latency p50 {report['p50_ms']:.3f} ms  p99 {report['p99_ms']:.3f} ms")
