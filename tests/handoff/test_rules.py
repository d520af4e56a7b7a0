from pathlib import Path

import pytest

from handoff.rules import REASON_CODES, RulesError, compile_phrase, load_rules, normalize_text
from tests.handoff.queue_helpers import CONFIG

MINIMAL = """\
departments:
  general: {name: {en: Help, es: Ayuda}, hours: ["mon-fri 09:00-17:00"]}
priorities:
  - {name: normal, points: 10, first_reply_s: 600, resolution_s: 3600}
  - {name: high, points: 20, first_reply_s: 300, resolution_s: 1800}
reasons:
""" + "".join(f"  {code}: {{priority: normal}}\n" for code in REASON_CODES)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "handoff.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str, default_department: str | None = None) -> list[str]:
    with pytest.raises(RulesError) as err:
        load_rules(write(tmp_path, text), default_department=default_department)
    return [str(p) for p in err.value.problems]


def test_the_shipped_rules_file_loads_with_every_reason_and_department() -> None:
    rules = load_rules(CONFIG / "handoff.yaml", "Europe/Madrid", "general")
    assert set(rules.reasons) == set(REASON_CODES)
    assert {"general", "orders", "logistics", "returns", "billing", "accounts"} <= set(rules.departments)
    assert [p.name for p in rules.priorities] == ["low", "normal", "high", "urgent"]
    assert rules.departments["returns"].display_in("es") == "Devoluciones"
    assert rules.departments["general"].hours.timezone == "Europe/Madrid"
    assert rules.raised("high").name == "urgent" and rules.raised("urgent").name == "urgent"
    assert {r.name for r in rules.keyword_rules} >= {"legal-threat", "cancellation"}
    assert len(rules.person_phrases["es"]) > 20 and len(rules.person_phrases["en"]) > 20


def test_a_minimal_file_loads(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, MINIMAL))
    assert list(rules.departments) == ["general"] and rules.keyword_rules == ()
    assert rules.departments["general"].hours.spans[0].start == 9 * 60


def test_errors_name_file_and_line(tmp_path: Path) -> None:
    text = (
        MINIMAL.replace('hours: ["mon-fri 09:00-17:00"]', 'hours: ["mon-fry 09:00-17:00"]')
        + """\
keyword_rules:
  - name: legal
    priority: urgnt
    department: lawyers
    tier: 5
    patterns: {en: ["sue"]}
"""
    )
    found = problems(tmp_path, text)
    path = str(tmp_path / "handoff.yaml")
    assert any(p.startswith(f"{path}:2: ") and "mon-fry" in p for p in found)
    assert any(p.startswith(f"{path}:17: ") and "unknown priority 'urgnt'" in p for p in found)
    assert any(p.startswith(f"{path}:18: ") and "unknown department 'lawyers'" in p for p in found)
    assert any(p.startswith(f"{path}:19: ") and "tier must be a whole number from 1 to 3" in p for p in found)


def test_unknown_keys_missing_reasons_and_bad_yaml(tmp_path: Path) -> None:
    assert any("did you mean 'priorities'" in p for p in problems(tmp_path, MINIMAL + "priorites: []\n"))
    short = MINIMAL.replace("  upset: {priority: normal}\n", "")
    assert any("give a priority for upset" in p for p in problems(tmp_path, short))
    assert any(
        ":2: bad YAML" in p or ":3: bad YAML" in p for p in problems(tmp_path, "departments:\n  - [\n")
    )
    wrong_reason = MINIMAL + "  angry: {priority: normal}\n"
    assert any("unknown key 'angry' in reasons" in p for p in problems(tmp_path, wrong_reason))


def test_default_department_must_exist(tmp_path: Path) -> None:
    assert any(
        "default department 'support'" in p for p in problems(tmp_path, MINIMAL, default_department="support")
    )


def test_duplicate_priorities_and_bad_holidays_and_zone(tmp_path: Path) -> None:
    text = MINIMAL.replace("  - {name: high,", "  - {name: normal,").replace(
        'hours: ["mon-fri 09:00-17:00"]}',
        'hours: ["mon-fri 17:00-09:00"], holidays: [soon], timezone: Mars/Base}',
    )
    found = problems(tmp_path, text)
    assert any("priority 'normal' given twice" in p for p in found)
    assert any("closing time must be after opening time" in p for p in found)
    assert any("holiday 'soon' is not a date" in p for p in found)
    assert any("unknown time zone 'Mars/Base'" in p for p in found)


def test_phrases_match_whole_words_ignoring_case_and_accents() -> None:
    assert normalize_text("¡Quiero hablar con un OPERADOR, ya!") == "quiero hablar con un operador ya"
    sue = compile_phrase("sue")
    assert sue.search(normalize_text("I will SUE you")) and not sue.search(normalize_text("my suede shoes"))
    demand = compile_phrase("demandar*")
    assert demand.search(normalize_text("Os voy a demandaros")) and not demand.search("demanda")
    assert compile_phrase("vía judicial").search(normalize_text("iré por la VIA   judicial"))


def test_every_department_of_the_sample_knowledge_base_has_a_queue() -> None:
    """A KB entry naming a department the rules lack would silently fall back to the default one."""
    from faq.loader import load_dir
    from handoff.rules import load_rules
    from tests.conftest import CONFIG_DIR

    kb = load_dir(CONFIG_DIR / "faq").kb
    assert kb is not None
    named = {e.department for e in kb.entries} | {e.handoff.department for e in kb.entries if e.handoff}
    assert named - {None} <= set(load_rules(CONFIG_DIR / "handoff.yaml").departments)


def test_a_keyword_rule_may_list_unless_phrases(tmp_path: Path) -> None:
    text = MINIMAL + """\
keyword_rules:
  - name: leaving
    priority: high
    patterns: {es: ["darme de baja"]}
    unless: {es: ["newsletter"], en: []}
"""
    found = problems(tmp_path, text)
    path = str(tmp_path / "handoff.yaml")
    assert any(p.startswith(f"{path}:19: ") and "unless.en is empty" in p for p in found)
    rules = load_rules(write(tmp_path, text.replace(', en: []', '')))
    assert [p.pattern for p in rules.keyword_rules[0].unless["es"]] == [r"\bnewsletter\b"]
