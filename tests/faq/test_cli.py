"""Tests for `relevo faq check|ask|eval` through bot.cli.main."""

import json
import shutil
from pathlib import Path

import pytest

from bot.cli import main
from faq.loader import load_dir

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


# -- admin polish: days, the rules next to the folder, asking while a file is broken, question lines -----


def test_unanswered_for_one_day_says_day(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio
    import time

    import redis.asyncio as aioredis

    from bot import unanswered
    from handoff import keys
    from tests.conftest import CONFIG_DIR

    async def seed(*texts: str) -> None:
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            await client.delete(keys.UNANSWERED)
            now = int(time.time() * 1000)
            for text in texts:
                await unanswered.note(client, unanswered.Unanswered("not_understood", text, "en", now))
        finally:
            await client.aclose()

    monkeypatch.setenv("REDIS_URL", redis_url)
    argv = ["--config", str(CONFIG_DIR), "faq", "unanswered", "--data", str(tmp_path)]
    asyncio.run(seed("do you sell dog food"))
    assert main([*argv, "--days", "1"]) == 0
    assert f"1 question not answered in the last day, 1 group shown (read from {redis_url})" in capsys.readouterr().out
    asyncio.run(seed("do you sell dog food", "are you hiring"))
    assert main([*argv, "--days", "2"]) == 0
    assert "2 questions not answered in the last 2 days, 2 groups shown" in capsys.readouterr().out


def shop_config(folder: Path) -> Path:
    """A copy of the shipped config folder, as an admin keeps one elsewhere (cfg/, cfg/faq/)."""
    from tests.conftest import CONFIG_DIR

    shutil.copytree(CONFIG_DIR, folder)
    return folder


@pytest.mark.parametrize("where", ["outside", "repo"])
def test_check_uses_the_handoff_rules_next_to_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    # Without --config, `faq check cfg/faq` checks against cfg/handoff.yaml, as `--config cfg` would:
    # from a folder without ./config, and from one whose ./config holds other rules.
    from tests.conftest import ROOT

    cfg = shop_config(tmp_path / "cfg")
    monkeypatch.delenv("RELEVO_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path if where == "outside" else ROOT)
    rules = cfg / "handoff.yaml"
    rules.write_text(rules.read_text(encoding="utf-8").replace("  logistics:", "  shipping:", 1), encoding="utf-8")
    assert "  shipping:" in rules.read_text(encoding="utf-8")
    assert main(["faq", "check", str(cfg / "faq")]) == 1
    out = capsys.readouterr().out
    assert f"departments checked against {rules} (found next to {cfg / 'faq'}; --config to use another)" in out
    assert "unknown department 'logistics'" in out and "known departments: " in out and "shipping" in out
    # --config still decides when given; the folder's own rules are not looked for then.
    assert main(["--config", str(ROOT / "config"), "faq", "check", str(cfg / "faq")]) == 0
    rules_used = ROOT / "config" / "handoff.yaml"
    assert f"departments checked against {rules_used}, as it is on disk\n" in capsys.readouterr().out


def test_check_of_a_folder_without_rules_beside_it_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    kb = tmp_path / "faq"
    shutil.copytree(FIXTURES / "kb", kb)
    monkeypatch.delenv("RELEVO_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["faq", "check", str(kb)]) == 0
    out = capsys.readouterr().out
    assert "departments not checked: no handoff rules file at config/handoff.yaml" in out


def broken_copy(folder: Path) -> Path:
    """The fixture knowledge base plus a second file, and that file broken (an unquoted ':')."""
    shutil.copytree(FIXTURES / "kb", folder)
    (folder / "gifts.yaml").write_text(
        'entries:\n  - id: gift-cards\n    questions: {en: ["Do you sell gift cards?"]}\n'
        "    answer:\n      en: Yes: from 10 euros.\n",
        encoding="utf-8",
    )
    return folder


def test_ask_while_a_file_is_broken_answers_from_the_files_that_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kb = broken_copy(tmp_path / "kb")
    rc = main(["faq", "ask", "how long does shipping take", "--kb", str(kb), "--data", str(tmp_path / "data")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "decision: answer shipping-time (en): Orders arrive in 2-4 business days." in out
    assert f"{kb / 'gifts.yaml'}:5: bad YAML: a ':' inside a text: put the text in quotes" in err
    assert (
        f"relevo faq: note: {kb} has 1 error(s) (see `relevo faq check`); no last good copy in "
        f"{tmp_path / 'data' / 'faq-last-good'}, so answering from the 1 file(s) that load, without gifts.yaml: "
        "the server may answer otherwise"
    ) in err


def test_ask_while_a_file_is_broken_answers_from_the_servers_last_good_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from faq import last_good

    kb = broken_copy(tmp_path / "kb")
    good = (kb / "gifts.yaml").read_text(encoding="utf-8").replace("Yes: from 10 euros.", '"Yes, from 10 euros."')
    (tmp_path / "good").mkdir()
    shutil.copy(kb / "shop.yaml", tmp_path / "good" / "shop.yaml")
    (tmp_path / "good" / "gifts.yaml").write_text(good, encoding="utf-8")
    loaded = load_dir(tmp_path / "good")
    assert loaded.kb is not None
    # What a server with this data folder kept at its last clean load.
    copy = last_good.save(tmp_path / "data" / "faq-last-good", loaded.kb.version, loaded.sources)
    assert copy is not None

    rc = main(["faq", "ask", "do you sell gift cards", "--kb", str(kb), "--data", str(tmp_path / "data")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "decision: answer gift-cards (en): Yes, from 10 euros." in out
    assert (
        f"relevo faq: note: {kb} has 1 error(s) (see `relevo faq check`); answering from the last good copy, "
        f"saved {copy.saved} in {copy.path}, as the server does until they are fixed"
    ) in err


def test_ask_with_nothing_that_loads_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "shop.yaml").write_text("entries:\n  - id: [broken\n", encoding="utf-8")
    assert main(["faq", "ask", "hello", "--kb", str(kb), "--data", str(tmp_path / "data")]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{kb / 'shop.yaml'}:2: bad YAML: a '[' that opens here is not closed" in err
    assert "no file of it loads, and no last good copy is in" in err


def test_check_reports_a_duplicated_question_at_the_questions_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kb = tmp_path / "kb"
    shutil.copytree(FIXTURES / "kb", kb)
    (kb / "zz_more.yaml").write_text(
        "entries:\n"
        "  - id: delivery-days\n"
        "    questions:\n"
        "      en:\n"
        '        - "Do you deliver on Saturdays?"\n'
        '        - "how many days until DELIVERY"\n'
        '    answer: {en: "Monday to Friday."}\n',
        encoding="utf-8",
    )
    shop = (kb / "shop.yaml").read_text(encoding="utf-8").splitlines()
    first = next(n for n, line in enumerate(shop, 1) if "How many days until delivery?" in line)
    assert main(["faq", "check", str(kb)]) == 1
    out = capsys.readouterr().out
    assert (
        f"{kb / 'zz_more.yaml'}:6: entry 'delivery-days': question 'how many days until DELIVERY' is the same as "
        f"'How many days until delivery?' of entry 'shipping-time' ({kb / 'shop.yaml'}:{first}) once normalised"
    ) in out
