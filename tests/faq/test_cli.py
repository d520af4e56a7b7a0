"""Tests for `relevo faq check|ask|eval` through bot.cli.main."""

import json
import shutil
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


def config_with_rules(folder: Path) -> Path:
    """A config folder holding the shipped handoff rules (its departments are what is checked)."""
    from tests.conftest import CONFIG_DIR

    folder.mkdir()
    (folder / "relevo.toml").write_text("", encoding="utf-8")
    shutil.copy(CONFIG_DIR / "handoff.yaml", folder / "handoff.yaml")
    return folder


def test_check_names_a_misspelt_handoff_department(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = config_with_rules(tmp_path / "config")
    kb = tmp_path / "kb"
    kb.mkdir()
    shop = (FIXTURES / "kb" / "shop.yaml").read_text(encoding="utf-8")
    line = shop.splitlines().index("    handoff: {department: returns, tier: 2}") + 1
    (kb / "shop.yaml").write_text(shop.replace("department: returns", "department: retruns"), encoding="utf-8")
    assert main(["--config", str(config), "faq", "check", str(kb)]) == 1
    out = capsys.readouterr().out
    assert (
        f"{kb / 'shop.yaml'}:{line}: unknown handoff department 'retruns' (did you mean 'returns'?) "
        "for entry 'damaged-item'; known departments: accounts, billing, general, logistics, orders, "
        "returns, supervisor, support, warranty"
    ) in out
    assert f"departments checked against {config / 'handoff.yaml'}" in out
    assert "1 error(s)" in out


def test_check_fails_on_an_emptied_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = config_with_rules(tmp_path / "config")
    kb = tmp_path / "kb"
    kb.mkdir()
    shutil.copy(FIXTURES / "kb" / "shop.yaml", kb / "shop.yaml")
    (kb / "extra.yaml").write_bytes(b"")
    assert main(["--config", str(config), "faq", "check", str(kb)]) == 1
    out = capsys.readouterr().out
    assert f"{kb / 'extra.yaml'}:1: file is empty" in out and "delete the file" in out


def eval_cases(tmp_path: Path, data: bytes, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    cases = tmp_path / "cases.csv"
    cases.write_bytes(data)
    rc = main(["faq", "eval", "--kb", KB, "--cases", str(cases), "--json"])
    out, err = capsys.readouterr()
    return rc, out, err


def test_eval_accepts_a_utf8_bom(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Excel's "CSV UTF-8" starts the file with a byte-order mark.
    data = (FIXTURES / "cases.csv").read_bytes()
    rc, out, err = eval_cases(tmp_path, b"\xef\xbb\xbf" + data, capsys)
    assert rc == 0, err
    assert json.loads(out)["cases"] == 12


def test_eval_names_the_line_of_a_non_utf8_byte(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = "text,expected\nhow long does shipping take,shipping-time\n¿cuánto tarda el envío?,shipping-time\n"
    rc, out, err = eval_cases(tmp_path, data.encode("latin-1"), capsys)
    assert rc == 1 and out == ""
    at = data.encode("latin-1").index(b"\xbf")
    assert f"{tmp_path / 'cases.csv'}:3: not UTF-8 text (byte 0xbf at byte offset {at})" in err
    assert "save the file as UTF-8" in err and "Traceback" not in err


def test_eval_refuses_an_expected_id_the_kb_lacks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = b"text,expected\nhow long does shipping take,shiping-time\ni want a refund,refund\nwho won,\n"
    rc, out, err = eval_cases(tmp_path, data, capsys)
    assert rc == 1 and out == ""
    assert f"{tmp_path / 'cases.csv'}:2: unknown entry id 'shiping-time' (did you mean 'shipping-time'?)" in err
    assert "1 case(s) expect an entry the knowledge base does not have" in err


def test_check_a_draft_file_with_the_knowledge_base_it_would_join(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `relevo faq unanswered --draft` says to check the draft file: it is checked with settings faq.dir,
    # so an id the knowledge base already has is found before the copy stops every reload.
    config = config_with_rules(tmp_path / "config")
    (config / "relevo.toml").write_text(f'[faq]\ndir = "{FIXTURES / "kb"}"\n', encoding="utf-8")
    draft = tmp_path / "draft.yaml"
    entry = ('  - id: {id}\n    questions: {{en: ["Do you sell gift cards?"]}}\n'
             '    answer: {{en: "Yes, from 10 euros."}}\n')
    draft.write_text("entries:\n" + entry.format(id="gift-cards"), encoding="utf-8")
    assert main(["--config", str(config), "faq", "check", str(draft)]) == 0
    assert f"{draft} with {FIXTURES / 'kb'}: ok, 7 entries" in capsys.readouterr().out
    draft.write_text("entries:\n" + entry.format(id="damaged-item"), encoding="utf-8")
    assert main(["--config", str(config), "faq", "check", str(draft)]) == 1
    out = capsys.readouterr().out
    assert f"{draft}:2: duplicate id 'damaged-item'" in out and "shop.yaml" in out, out
