"""Tests for `relevo faq check|ask|eval` through bot.cli.main."""

import json
from pathlib import Path

import pytest

from bot.cli import main

from .conftest import FIXTURES

KB = str(FIXTURES / "kb")


def test_eval_prints_the_json_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        [
            "faq",
            "eval",
            "--kb",
            KB,
            "--cases",
            str(FIXTURES / "cases.csv"),
            "--json",
            "--answer-threshold",
            "0.85",
            "--clarify-threshold",
            "0.22",
        ]
    )
    assert rc == 0
    m = json.loads(capsys.readouterr().out)
    for key in (
        "cases",
        "in_scope",
        "out_of_scope",
        "answered",
        "answer_precision",
        "answer_coverage",
        "clarified",
        "clarify_hit_rate",
        "resolved_rate",
        "oos_answered_rate",
        "p50_ms",
        "p99_ms",
    ):
        assert key in m
    assert (m["cases"], m["in_scope"], m["out_of_scope"]) == (12, 10, 2)
    assert m["oos_answered_rate"] == 0.0
    assert m["resolved_rate"] >= 0.8
    assert m["answer_threshold"] == 0.85


def test_eval_reads_thresholds_from_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "relevo.toml").write_text("[faq]\nanswer_threshold = 0.99\nclarify_threshold = 0.98\n")
    rc = main(
        [
            "--config",
            str(tmp_path),
            "faq",
            "eval",
            "--kb",
            KB,
            "--cases",
            str(FIXTURES / "cases.csv"),
            "--json",
        ]
    )
    assert rc == 0
    m = json.loads(capsys.readouterr().out)
    assert (m["answer_threshold"], m["clarify_threshold"]) == (0.99, 0.98)


def test_ask_shows_candidates_and_decision(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["faq", "ask", "cuanto tarda el enbio", "--kb", KB, "--answer-threshold", "0.85"]) == 0
    out = capsys.readouterr().out
    assert "language: es" in out
    assert "1. shipping-time" in out
    assert "decision: answer shipping-time (es): Los pedidos llegan" in out


def test_ask_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["faq", "ask", "¿quién ganó el partido?", "--kb", KB, "--lang", "es"]) == 0
    assert "decision: unknown" in capsys.readouterr().out


def test_check_ok_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["faq", "check", KB]) == 0
    assert "ok, 6 entries" in capsys.readouterr().out
    (tmp_path / "bad.yaml").write_text("entries:\n  - id: x\n    questionz: {}\n", encoding="utf-8")
    assert main(["faq", "check", str(tmp_path)]) == 1
    assert "bad.yaml:3:" in capsys.readouterr().out
