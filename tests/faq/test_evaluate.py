"""Tests for faq.evaluate: metrics and the cases file."""

from pathlib import Path

import pytest

from faq.evaluate import Case, CasesError, evaluate, read_cases
from faq.model import KnowledgeBase
from faq.policy import Thresholds

from .conftest import FIXTURES


def test_read_cases() -> None:
    cases = read_cases(FIXTURES / "cases.csv")
    assert cases[0] == Case("how long does shiping take", "shipping-time")
    assert cases[-1].expected == ""


def test_bad_header_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "c.csv"
    bad.write_text("question,answer\nx,y\n", encoding="utf-8")
    with pytest.raises(CasesError, match=r"c\.csv:1"):
        read_cases(bad)


def test_metrics_follow_the_definitions(kb: KnowledgeBase) -> None:
    cases = [
        Case("How do I change my password?", "change-password"),
        Case("Can I pay with PayPal?", "refund"),
        Case("¿Cuánto tarda el envío?", ""),
        Case("account settings", ""),  # out of scope, offered suggestions
    ]
    m = evaluate(kb, cases, Thresholds(answer=0.5, clarify=0.0, max_suggestions=3))
    assert (m["cases"], m["in_scope"], m["out_of_scope"]) == (4, 2, 2)
    # password: right; paypal answered with payment-methods: wrong; envío (labelled OOS) answered: wrong.
    assert m["answered"] == 3 and m["answered_correct"] == 1
    assert m["answer_precision"] == pytest.approx(1 / 3, abs=1e-3)
    assert m["answer_coverage"] == 0.5
    assert m["oos_answered_rate"] == 0.5
    assert m["clarified"] == 1 and m["clarify_hits"] == 0
    assert m["resolved_rate"] == 0.5
    assert m["p99_ms"] >= m["p50_ms"] > 0


def test_everything_refused_with_threshold_one(kb: KnowledgeBase) -> None:
    m = evaluate(kb, [Case("How do I get a refund?", "refund")], Thresholds(answer=1.01, clarify=1.01))
    assert m["answered"] == 0 and m["answer_precision"] == 0.0 and m["unknown"] == 1
