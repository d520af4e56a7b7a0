import os
import time
from pathlib import Path

import pytest

from faq.loader import load_dir

GOOD = """\
department: logistics
entries:
  - id: shipping-time
    questions:
      en: ["How long does shipping take?", "When will my order arrive?"]
      es: ["¿Cuánto tarda el envío?", "¿Cuándo llega mi pedido?"]
    answer:
      en: "Orders arrive in 2–4 business days."
      es: "Los pedidos llegan en 2 a 4 días hábiles."
  - id: damaged-item
    questions: {en: ["My parcel arrived broken"], es: ["Me llegó roto el paquete"]}
    answer: {en: "Sorry about that.", es: "Lo sentimos."}
    handoff: {department: returns, tier: 2}
"""


def kb_dir(tmp_path: Path, **files: str) -> Path:
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def messages(result: object) -> list[str]:
    return [str(p) for p in result.errors]  # type: ignore[attr-defined]


def test_loads_entries_with_file_defaults_and_handoff(tmp_path: Path) -> None:
    result = load_dir(kb_dir(tmp_path, shop=GOOD))
    assert result.errors == [] and result.kb is not None
    by_id = result.kb.by_id
    assert by_id["shipping-time"].department == "logistics"
    assert by_id["shipping-time"].questions["es"][0] == "¿Cuánto tarda el envío?"
    assert by_id["shipping-time"].line == 3
    rule = by_id["damaged-item"].handoff
    assert rule is not None and (rule.department, rule.tier) == ("returns", 2)
    assert by_id["damaged-item"].answer_in("es") == ("Lo sentimos.", "es")
    assert result.kb.version


def test_version_changes_with_content_only(tmp_path: Path) -> None:
    v1 = load_dir(kb_dir(tmp_path, shop=GOOD)).kb.version  # type: ignore[union-attr]
    assert load_dir(tmp_path).kb.version == v1  # type: ignore[union-attr]
    kb_dir(tmp_path, shop=GOOD.replace("2–4", "3–5"))
    assert load_dir(tmp_path).kb.version != v1  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Where the '{' opens, not the end of the file (line 4, past its last line) where PyYAML gives up.
        ('entries:\n  - id: a\n    questions: {en: ["hi there"]\n', "x.yaml:3: bad YAML: a '{' that opens here"),
        (
            'entries:\n  - id: a\n    question: {en: ["where is it"]}\n    answer: {en: b}\n',
            "x.yaml:3: unknown key 'question' in an entry (did you mean 'questions'?)",
        ),
        (
            "deparment: x\nentries: []\n",
            "x.yaml:1: unknown key 'deparment' in the file (did you mean 'department'?)",
        ),
        (
            'entries:\n  - id: a\n    questions: {en: ["where is it"], es: ["donde esta"]}\n    answer: {en: b}\n',
            "x.yaml:4: entry 'a' has questions in 'es' but no answer in 'es'",
        ),
        (
            "entries:\n  - id: a\n    questions: {en: []}\n    answer: {en: b}\n",
            "x.yaml:3: entry 'a': questions.en is empty",
        ),
        (
            'entries:\n  - id: a\n    questions: {en: ["  "]}\n    answer: {en: b}\n',
            "x.yaml:3: entry 'a': a question in en is empty",
        ),
        ("entries:\n  - id: a\n    answer: {en: b}\n", "x.yaml:2: entry 'a' has no questions"),
        ('entries:\n  - id: a\n    questions: {en: ["where"]}\n', "x.yaml:2: entry 'a' has no answer"),
        ('entries:\n  - questions: {en: ["where"]}\n    answer: {en: b}\n', "x.yaml:2: entry without an id"),
        (
            'entries:\n  - id: a\n    questions: {en: ["where is it"]}\n    answer: {en: b}\n'
            "    handoff: {department: returns, tier: 7}\n",
            "x.yaml:5: entry 'a': handoff.tier must be a whole number",
        ),
        (
            'entries:\n  - id: a\n    questions: {en: ["where is it"]}\n    answer: {en: b}\n    handoff: {tier: 2}\n',
            "x.yaml:5: entry 'a': handoff needs a department",
        ),
        (
            'entries:\n  - id: a b\n    questions: {en: ["where"]}\n    answer: {en: b}\n',
            "x.yaml:2: id 'a b' must start with a letter or digit",
        ),
        (
            'entries:\n  - id: a\n    questions: {english: ["where"]}\n    answer: {en: b}\n',
            "x.yaml:3: entry 'a' questions: 'english' is not a two-letter language code",
        ),
        ("- just\n- a list\n", "x.yaml:1: a knowledge-base file must be a mapping"),
        ("entries: {id: a}\n", "x.yaml:1: entries must be a list"),
    ],
)
def test_each_validation_error_names_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    result = load_dir(kb_dir(tmp_path, x=text))
    assert result.kb is None
    found = [m for m in messages(result) if m.startswith(str(tmp_path / expected.split(":")[0]))]
    assert any(m.endswith(expected.split(":", 1)[1]) or expected.split(":", 1)[1] in m for m in found), (
        messages(result)
    )


def touched(path: Path, seconds_ago: float) -> None:
    """Give a file a modification time, as an admin's edit a while ago would have."""
    when = time.time() - seconds_ago
    os.utime(path, (when, when))


def test_duplicate_id_across_files_names_both_places(tmp_path: Path) -> None:
    other = 'entries:\n  - id: shipping-time\n    questions: {en: ["anything else"]}\n    answer: {en: b}\n'
    kb_dir(tmp_path, a=GOOD, b=other)
    touched(tmp_path / "a.yaml", 3600)
    touched(tmp_path / "b.yaml", 10)
    result = load_dir(tmp_path)
    assert result.kb is None
    assert messages(result) == [
        f"{tmp_path / 'b.yaml'}:2: duplicate id 'shipping-time' "
        f"(already used at {tmp_path / 'a.yaml'}:3, a file changed before this one)"
    ]


def test_a_duplicate_id_is_blamed_on_the_file_changed_last_not_the_one_sorted_last(tmp_path: Path) -> None:
    # The tester's case: zz_new.yaml has had 'gift-cards' for a day; the admin now drops zz_dup.yaml,
    # which sorts first. The new file is the one reported, and it names the untouched one.
    gift = 'entries:\n  - id: gift-cards\n    questions: {{en: ["{q}"]}}\n    answer: {{en: "{a}"}}\n'
    kb_dir(tmp_path, shop=GOOD, zz_new=gift.format(q="Do you sell gift cards?", a="Yes."))
    touched(tmp_path / "shop.yaml", 7 * 86400)
    touched(tmp_path / "zz_new.yaml", 86400)
    assert load_dir(tmp_path).ok
    kb_dir(tmp_path, zz_dup=gift.format(q="do you sell GIFT cards", a="No."))
    result = load_dir(tmp_path)
    assert result.kb is None
    assert all(str(p).startswith(str(tmp_path / "zz_dup.yaml")) for p in result.errors), messages(result)
    assert (
        f"{tmp_path / 'zz_dup.yaml'}:2: duplicate id 'gift-cards' "
        f"(already used at {tmp_path / 'zz_new.yaml'}:2, a file changed before this one)"
    ) in messages(result)
    # The same question under two entries is the new file's problem too, at the questions' own lines.
    kb_dir(tmp_path, zz_dup=gift.format(q="do you sell GIFT cards", a="No.").replace("gift-cards", "vouchers"))
    [conflict] = load_dir(tmp_path).errors
    assert str(conflict).startswith(f"{tmp_path / 'zz_dup.yaml'}:3: entry 'vouchers'")
    assert f"'gift-cards' ({tmp_path / 'zz_new.yaml'}:3)" in str(conflict)

    # Touching the old file later makes it the newer one: then it is the one reported.
    touched(tmp_path / "zz_dup.yaml", 3600)
    touched(tmp_path / "zz_new.yaml", 5)
    [conflict] = load_dir(tmp_path).errors
    assert str(conflict).startswith(f"{tmp_path / 'zz_new.yaml'}:3: entry 'gift-cards'")


def test_a_duplicate_id_in_files_changed_at_the_same_time_is_reported_in_file_order(tmp_path: Path) -> None:
    other = 'entries:\n  - id: shipping-time\n    questions: {en: ["anything else"]}\n    answer: {en: b}\n'
    kb_dir(tmp_path, a=GOOD, b=other)
    same = time.time_ns() - 60 * 10**9  # a copy of the folder (cp -r, a checkout) can give every file one time
    for name in ("a.yaml", "b.yaml"):
        os.utime(tmp_path / name, ns=(same, same))
    assert messages(load_dir(tmp_path)) == [
        f"{tmp_path / 'b.yaml'}:2: duplicate id 'shipping-time' (first at {tmp_path / 'a.yaml'}:3)"
    ]


def test_a_duplicate_id_within_one_file_is_reported_at_its_second_use(tmp_path: Path) -> None:
    twice = GOOD + '  - id: shipping-time\n    questions: {en: ["anything else"]}\n    answer: {en: b}\n'
    kb_dir(tmp_path, a=twice, b='entries:\n  - id: other\n    questions: {en: ["other"]}\n    answer: {en: b}\n')
    touched(tmp_path / "a.yaml", 10)
    touched(tmp_path / "b.yaml", 3600)
    assert messages(load_dir(tmp_path)) == [
        f"{tmp_path / 'a.yaml'}:14: duplicate id 'shipping-time' (first at {tmp_path / 'a.yaml'}:3)"
    ]


def test_same_normalised_question_under_two_entries_is_a_conflict(tmp_path: Path) -> None:
    other = (
        'entries:\n  - id: eta\n    questions: {en: ["how LONG does shipping take"]}\n    answer: {en: b}\n'
    )
    result = load_dir(kb_dir(tmp_path, a=GOOD, b=other))
    assert result.kb is None
    [err] = [m for m in messages(result) if "cannot tell them apart" in m]
    assert err == (
        f"{tmp_path / 'b.yaml'}:3: entry 'eta': question 'how LONG does shipping take' is the same as "
        f"'How long does shipping take?' of entry 'shipping-time' ({tmp_path / 'a.yaml'}:5) once normalised; "
        "the bot cannot tell them apart"
    )


def test_a_duplicated_question_is_reported_at_its_own_line_in_a_block_list(tmp_path: Path) -> None:
    # The tester's case: a long entry, the copied question far below its `id:` line.
    other = (
        "entries:\n"
        "  - id: eta\n"
        "    questions:\n"
        "      en:\n"
        '        - "When does it come?"\n'
        '        - "when will my ORDER arrive"\n'
        "    answer: {en: b}\n"
    )
    kb_dir(tmp_path, a=GOOD, b=other)
    touched(tmp_path / "a.yaml", 3600)
    result = load_dir(tmp_path)
    [err] = messages(result)
    assert err.startswith(f"{tmp_path / 'b.yaml'}:6: entry 'eta': question 'when will my ORDER arrive' "), err
    assert f"of entry 'shipping-time' ({tmp_path / 'a.yaml'}:5)" in err
    # Two wordings of one entry that normalise alike: a warning, at the second one's line.
    same = other.replace('"When does it come?"', '"When will my order arrive?"').replace("eta", "shipping-time")
    alone = tmp_path / "alone"
    alone.mkdir()
    [warning] = load_dir(kb_dir(alone, c=same)).warnings
    assert str(warning).startswith(f"{alone / 'c.yaml'}:6: entry 'shipping-time': questions "), warning


def test_non_utf8_and_empty_files(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_bytes(b"entries:\n  - id: caf\xe9\n")
    (tmp_path / "empty.yaml").write_text("", encoding="utf-8")
    result = load_dir(tmp_path)
    assert f"{tmp_path / 'bad.yaml'}:2: file is not UTF-8 text" in messages(result)
    assert any(m.startswith(f"{tmp_path / 'empty.yaml'}:1: file is empty") for m in messages(result))


# A truncated save or `: > file` leaves one of these; loading it as "no entries" would silently
# drop the file's entries from the live bot.
@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("", 1, "file is empty"),
        ("\n   \n", 1, "file is empty"),
        ("# shipping questions, being rewritten\n# department: logistics\n", 1, "file is empty"),
        ("department: logistics\n", 1, "file has no entries"),
        ("department: logistics\nentries:\n", 2, "file has no entries"),
        ("department: logistics\nentries: []\n", 2, "entries is an empty list"),
    ],
)
def test_a_file_without_entries_is_an_error(tmp_path: Path, text: str, line: int, words: str) -> None:
    result = load_dir(kb_dir(tmp_path, shop=GOOD, shipping=text))
    assert result.kb is None
    [err] = messages(result)
    assert err.startswith(f"{tmp_path / 'shipping.yaml'}:{line}: {words}"), err
    assert "delete the file" in err
    assert result.warnings == []


DEPARTMENTS = {"general", "logistics", "returns", "billing"}


def test_unknown_handoff_department_names_file_line_entry_and_the_known_ones(tmp_path: Path) -> None:
    text = GOOD.replace("handoff: {department: returns, tier: 2}", "handoff: {department: biling, tier: 2}")
    result = load_dir(kb_dir(tmp_path, shop=text), DEPARTMENTS)
    assert result.kb is None
    assert messages(result) == [
        f"{tmp_path / 'shop.yaml'}:13: unknown handoff department 'biling' (did you mean 'billing'?) "
        "for entry 'damaged-item'; known departments: billing, general, logistics, returns"
    ]
    # Without the rules (a library user, the matcher benchmarks) names are not checked.
    assert load_dir(tmp_path).kb is not None


def test_misspelt_file_department_is_reported_once_at_its_line(tmp_path: Path) -> None:
    # Both entries take the file's department, and damaged-item's handoff would too without its own.
    text = GOOD.replace("department: logistics", "department: logistcs").replace(
        "handoff: {department: returns, tier: 2}", "handoff: {tier: 2}"
    )
    result = load_dir(kb_dir(tmp_path, shop=text), DEPARTMENTS)
    [err] = messages(result)
    assert err.startswith(
        f"{tmp_path / 'shop.yaml'}:1: unknown department 'logistcs' (did you mean 'logistics'?) "
        "for entries 'shipping-time', 'damaged-item'; known departments:"
    ), err


def test_known_departments_pass(tmp_path: Path) -> None:
    result = load_dir(kb_dir(tmp_path, shop=GOOD), DEPARTMENTS)
    assert result.errors == [] and result.kb is not None
    rule = result.kb.by_id["damaged-item"].handoff
    assert rule is not None and rule.line == 13


def test_missing_folder_and_folder_without_files(tmp_path: Path) -> None:
    assert "not found" in messages(load_dir(tmp_path / "nope"))[0]
    assert "no knowledge-base files" in messages(load_dir(tmp_path))[0]


def test_unsupported_language_is_a_warning_not_an_error(tmp_path: Path) -> None:
    text = (
        'entries:\n  - id: a\n    questions: {fr: ["où est mon colis"], en: ["where is it"]}\n'
        "    answer: {fr: b, en: c}\n"
    )
    result = load_dir(kb_dir(tmp_path, x=text))
    assert result.kb is not None
    assert any("language 'fr'" in str(w) for w in result.warnings)


def test_shipped_sample_knowledge_base_is_valid_and_large_enough() -> None:
    from tests.conftest import CONFIG_DIR

    result = load_dir(CONFIG_DIR / "faq")
    assert result.errors == [], [str(e) for e in result.errors]
    kb = result.kb
    assert kb is not None and len(kb) >= 40
    for entry in kb.entries:
        for lang in ("en", "es"):
            assert len(entry.questions.get(lang, ())) >= 3, (entry.id, lang)
            assert entry.answers.get(lang), (entry.id, lang)
    departments = {e.department for e in kb.entries}
    assert len(departments) >= 7
    assert sum(1 for e in kb.entries if e.handoff) >= 3


def test_bad_yaml_points_at_the_offending_line(tmp_path: Path) -> None:
    text = GOOD.replace('      es: "Lo', '      es: "Lo" x "', 1)
    result = load_dir(kb_dir(tmp_path, shop=text))
    [err] = messages(result)
    assert err.startswith(f"{tmp_path / 'shop.yaml'}:9: bad YAML")


# -- broken YAML: where the mistake is, in words an admin can act on ------------------------------------

STORE = """\
department: store
entries:
  - id: opening-hours
    questions:
      en: ["When are you open?", "opening hours"]
      es: ["¿Cuándo abrís?", "horario"]
    answer:
      en: "Monday to Friday, 9 am to 6 pm."
      es: "De lunes a viernes, de 9 a 18 h."
  - id: store-address
    questions: {en: ["Where is your shop?"], es: ["¿Dónde está la tienda?"]}
    answer: {en: "Calle Mayor 1, Madrid.", es: "Calle Mayor 1, Madrid."}
"""
HOURS = '"Monday to Friday, 9 am to 6 pm."'
INDENT = "the indentation does not match the lines above"
COLON = "a ':' inside a text: put the text in quotes"
QUOTE = "a quote ({}) that opens here is not closed"
START = "a text cannot start with '{}': put the text in quotes"


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        # PyYAML: line 9 "expected <block end>, but found '<block mapping start>'" (its problem mark); the
        # block it was reading starts at line 8 (its context mark), whose 5 spaces no other line has.
        ('      en: "Monday', '     en: "Monday', 8, INDENT),
        # The same complaint at line 9, where the mistake is this time (7 spaces).
        ('      es: "De', '       es: "De', 9, INDENT),
        # PyYAML: line 9 (problem mark); the block started at line 3 (context mark).
        ('      es: "De', '     es: "De', 9, INDENT),
        ("    answer:\n", "   answer:\n", 7, INDENT),
        ("  - id: store-address", "   - id: store-address", 10, INDENT),
        # PyYAML: "mapping values are not allowed here" at the second ':' (problem mark: right).
        ("en: " + HOURS, "en: Hours: Monday to Friday, 9 am to 6 pm.", 8, COLON),
        ('en: ["When are you open?", "opening hours"]', 'en: ["When are you open?", Opening hours: when?]', 5, COLON),
        # A name deeper than the one above it reads as more of that text, then the ':' is refused.
        ('      es: "De lunes a viernes, de 9 a 18 h."', '      es: De lunes a viernes\n       en2: x', 10, INDENT),
        ('      en: "Monday', '\ten: "Monday', 8, "tabs are not allowed for indentation, use spaces"),
        ('      en: "Monday', '      en:\t"Monday', 8, "a tab here: use spaces instead"),
        # PyYAML: line 9 "expected <block end>, but found '<scalar>'": the quote ran to the next one, on line 9.
        (HOURS, '"Monday to Friday, 9 am to 6 pm.', 8, QUOTE.format('"')),
        # PyYAML: "found unexpected end of stream" at line 13 (problem); the quote opens at line 12 (context).
        ('es: "Calle Mayor 1, Madrid."}', "es: 'Calle Mayor 1, Madrid.}", 12, QUOTE.format("'")),
        # PyYAML: line 6 "expected ',' or ']'" (problem); the list opens at line 5 (context).
        ('"opening hours"]', '"opening hours"', 5, "a '[' that opens here is not closed"),
        ('"¿Dónde está la tienda?"]}', '"¿Dónde está la tienda?"]', 11, "a '{' that opens here is not closed"),
        ('en: ["When are you open?", "opening hours"]', 'en: ["When are you open?" "opening hours"]', 5,
         "a ',' is missing between two items, or a quote inside a text ends it early"),
        (HOURS, '"Monday" to Friday', 8,
         "text after the closing quote: put the whole text in quotes, and write a quote inside it as \\\" "
         "(or quote the text with ' ')"),
        ("  - id: store-address", "  -id: store-address", 10, "a '-' that starts a list item needs a space after it"),
        ("en: " + HOURS, 'en:"Monday to Friday"', 8, "put a space after the ':' that ends a name"),
        (HOURS, "@shop on Twitter", 8, START.format("@")),
        (HOURS, "*Monday* to Friday", 8, START.format("*")),
        (HOURS, "!Open! Monday to Friday", 8, START.format("!")),
        (HOURS, '"See C:\\shop\\hours.txt"', 8,
         "a '\\' inside a text in double quotes: write it as '\\\\', or quote the text with ' '"),
    ],
)
def test_broken_yaml_is_explained_at_the_line_to_fix(
    tmp_path: Path, old: str, new: str, line: int, message: str
) -> None:
    assert STORE.count(old) == 1
    result = load_dir(kb_dir(tmp_path, store=STORE.replace(old, new)))
    assert result.kb is None
    assert messages(result) == [f"{tmp_path / 'store.yaml'}:{line}: bad YAML: {message}"]


@pytest.mark.parametrize(
    ("new", "line"),
    [
        ('      en:\n        - "When are you open?"\n        - Opening hours: when?', 7),
        ('      en: ["When are you open?", Opening hours: 9 to 6]', 5),
    ],
)
def test_an_unquoted_colon_in_a_question_is_explained(tmp_path: Path, new: str, line: int) -> None:
    # Valid YAML, but the question became a mapping ("Opening hours": "when?").
    text = STORE.replace('      en: ["When are you open?", "opening hours"]', new)
    assert messages(load_dir(kb_dir(tmp_path, store=text))) == [
        f"{tmp_path / 'store.yaml'}:{line}: entry 'opening-hours': a question in en must be text ({COLON})"
    ]


def test_unbroken_store_file_loads(tmp_path: Path) -> None:
    assert load_dir(kb_dir(tmp_path, store=STORE)).ok
