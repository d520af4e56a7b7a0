"""The questions the bot could not answer: noted in Redis, grouped, and listed by `relevo faq unanswered`."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import redis.asyncio as aioredis
import yaml

from bot import unanswered
from bot.unanswered import Unanswered
from faq.library import Library
from faq.loader import load_dir
from faq.policy import Thresholds
from handoff import keys
from tests.conftest import CONFIG_DIR, ROOT

NOW = 1_800_000_000_000


def item(text: str, lang: str = "en", kind: unanswered.Kind = "not_understood", **kw: object) -> Unanswered:
    return Unanswered(kind=kind, text=text, lang=lang, ts=int(kw.pop("ts", NOW)), **kw)  # type: ignore[arg-type]


def test_the_same_question_in_other_words_is_one_group_most_asked_first() -> None:
    groups = unanswered.group([
        item("Do you sell gift cards?"), item("do you sell gift cards"), item("can I pay with crypto", ts=NOW + 1),
        item("¿Vendéis tarjetas regalo?", "es"), item("vendeis tarjetas regalo", "es"),
        item("DO YOU SELL GIFT CARDS??"),
    ])  # fmt: skip
    assert [g.count for g in groups] == [3, 2, 1]
    assert unanswered.examples(groups[0]) == [("Do you sell gift cards?", "en")]  # case and punctuation aside
    assert groups[1].asked[0] == ("¿Vendéis tarjetas regalo?", "es")


def test_the_draft_needs_answers_before_the_bot_can_use_it(tmp_path: Path) -> None:
    groups = unanswered.group([item("Do you sell gift cards?"), item("¿Vendéis tarjetas regalo?", "es")])
    text = unanswered.draft(groups)
    data = yaml.safe_load(text)
    assert data["entries"][0]["questions"] == {"en": ["Do you sell gift cards?"]}
    (tmp_path / "new.yaml").write_text(text, encoding="utf-8")
    result = load_dir(tmp_path)
    # Copied as it is, the file is refused: empty answers never reach a customer.
    assert result.kb is None and any("answer" in e.message for e in result.errors)


KB = """\
entries:
  - id: shipping-cost
    questions: {en: ["How much does shipping cost?", "Is shipping free?"], es: ["¿Cuánto cuesta el envío?"]}
    answer: {en: "Shipping is free over 50 euros.", es: "El envío es gratis a partir de 50 euros."}
  - id: warranty
    questions: {en: ["How long is the warranty?"], es: ["¿Cuánto dura la garantía?"]}
    answer: {en: "Two years.", es: "Dos años."}
"""


def library(tmp_path: Path) -> Library:
    folder = tmp_path / "kb"
    folder.mkdir(exist_ok=True)
    (folder / "shop.yaml").write_text(KB, encoding="utf-8")
    return Library(folder, Thresholds(0.85, 0.21, 3))


def test_what_the_knowledge_base_answers_by_now_is_left_out(tmp_path: Path) -> None:
    kb = library(tmp_path)
    items = [
        item("IS SHIPPING FREE??"),  # one of its questions, once normalised
        item("¿cuánto cuesta el envío?", "es", kind="not_chosen", suggested=("shipping-cost",)),
        item("what does shipping cost", kind="not_helpful", entry="warranty"),  # answered now by another entry
        item("do you sell gift cards"),
        item("how much is shipping to iceland", kind="not_helpful", entry="shipping-cost"),  # that answer failed
        item("do you sell dog food", kind="not_chosen", suggested=("warranty",)),
    ]
    kept, answered = unanswered.still_open(items, kb)
    assert answered == 3
    assert [i.text for i in kept] == [
        "do you sell gift cards", "how much is shipping to iceland", "do you sell dog food",
    ]  # fmt: skip
    groups, answered = unanswered.open_groups(items, kb)
    assert answered == 3 and sum(g.count for g in groups) == 3
    # Added to the knowledge base since: gone from the list too.
    (tmp_path / "kb" / "more.yaml").write_text(
        'entries: [{id: pets, questions: {en: ["Do you sell dog food?"]}, answer: {en: "No."}}]\n', encoding="utf-8"
    )
    assert kb.reload()
    kept, answered = unanswered.still_open(items, kb)
    assert answered == 4 and "do you sell dog food" not in [i.text for i in kept]


def test_a_draft_never_repeats_a_question_of_the_knowledge_base_or_of_itself(tmp_path: Path) -> None:
    kb = library(tmp_path)
    items = [
        item("Is shipping free?", kind="not_helpful", entry="shipping-cost"),  # the entry's own question
        item("do you sell gift cards"), item("Gift cards: do you sell?"),  # one group
        item("returning shoes"), item("return the shoe"),  # two groups, the same question once normalised
    ]  # fmt: skip
    groups, _ = unanswered.open_groups(items, kb)
    assert [g.count for g in groups] == [2, 1, 1, 1]
    # Its answer did not help for its own question: listed (the answer needs work), not drafted.
    assert "Is shipping free?" in [t for g in groups for t, _ in g.asked]
    text = unanswered.draft(groups, kb=kb.kb)
    (tmp_path / "kb" / "new.yaml").write_text(text, encoding="utf-8")
    result = load_dir(tmp_path / "kb")
    # Refused for the empty answers alone: no question is "the same as" another once normalised.
    assert result.kb is None and result.errors
    assert all("answer" in e.message and "same as" not in e.message for e in result.errors), result.errors
    questions = [q for e in yaml.safe_load(text)["entries"] for qs in e["questions"].values() for q in qs]
    assert "Is shipping free?" not in questions and "do you sell gift cards" in questions
    assert "Gift cards: do you sell?" in questions  # the same entry twice: a warning only, the wording stays
    assert ("returning shoes" in questions) != ("return the shoe" in questions)


def test_questions_passed_over_are_kept_and_listed_with_what_was_offered() -> None:
    (g,) = unanswered.group([item("do you sell dog food", kind="not_chosen", best="warranty",
                                  suggested=("warranty", "factory-reset"))])
    assert unanswered.to_dict(g)["kinds"] == ["not_chosen"] and g.entries == {"warranty", "factory-reset"}


def relevo(redis_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELEVO_")}
    env["REDIS_URL"] = redis_url
    return subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(CONFIG_DIR), "faq", "unanswered", "--data", str(tmp_path),
         *args],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=50,
    )  # fmt: skip


def test_the_command_lists_recent_questions_grouped(redis_url: str, tmp_path: Path) -> None:
    async def seed() -> None:
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            await client.delete(keys.UNANSWERED)
            for text in ("do you sell gift cards", "Do you sell gift cards?"):
                await unanswered.note(client, item(text, best="islands-shipping", confidence=0.1))
            await unanswered.note(client, item("🤔"))  # nothing to write an entry for: not noted
            await client.xadd(keys.UNANSWERED, {"kind": "not_understood", "text": "❤️", "lang": "es", "ts": 1})
            await unanswered.note(client, item("<b>how long</b> is the warranty", kind="not_helpful",
                                               entry="warranty-period"))
            # One of the shipped knowledge base's questions (warranty-period): answered by now, left out.
            await unanswered.note(client, item("how long is the WARRANTY", kind="not_chosen",
                                               suggested=("warranty-period",)))
        finally:
            await client.aclose()

    asyncio.run(seed())
    listed = relevo(redis_url, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert f"4 questions not answered in the last 30 days, 2 groups shown (read from {redis_url})" in listed.stdout
    assert "(1 of them the knowledge base answers by now: left out)" in listed.stdout
    assert "2x  (not understood; near: islands-shipping)" in listed.stdout
    assert "1x  (answer did not help; near: warranty-period)" in listed.stdout
    assert "[en] <b>how long</b> is the warranty" in listed.stdout
    assert "WARRANTY" not in listed.stdout
    as_json = json.loads(relevo(redis_url, tmp_path, "--json").stdout)
    assert [g["count"] for g in as_json["groups"]] == [2, 1] and as_json["noted"] == 4
    assert as_json["answered_now"] == 1
    draft = relevo(redis_url, tmp_path, "--draft")
    entries = yaml.safe_load(draft.stdout)["entries"]
    assert [e["id"] for e in entries] == ["new-question-1", "new-question-2"]
    assert "WARRANTY" not in draft.stdout
    bad = relevo(redis_url, tmp_path, "--days", "0")
    assert bad.returncode == 2 and "--days" in bad.stderr


def test_the_command_takes_whole_days_and_one_output(redis_url: str, tmp_path: Path) -> None:
    # As /api/unanswered: whole days, 1..3650.
    for days in ("0.5", "1.5", "3651"):
        half = relevo(redis_url, tmp_path, "--days", days)
        assert half.returncode == 2 and f"--days: expected a whole number from 1 to 3650, got '{days}'" in half.stderr
    both = relevo(redis_url, tmp_path, "--json", "--draft")
    assert both.returncode == 2 and "--draft: not allowed with argument --json" in both.stderr
    one = relevo(redis_url, tmp_path, "--days", "1", "--json")
    assert one.returncode == 0 and json.loads(one.stdout)["days"] == 1
