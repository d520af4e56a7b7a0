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
from faq.loader import load_dir
from handoff import keys
from tests.conftest import CONFIG_DIR, ROOT

NOW = 1_800_000_000_000


def item(text: str, lang: str = "en", kind: unanswered.Kind = "not_understood", **kw: object) -> Unanswered:
    return Unanswered(kind=kind, text=text, lang=lang, ts=int(kw.pop("ts", NOW)), **kw)  # type: ignore[arg-type]


def test_the_same_question_in_other_words_is_one_group_most_asked_first() -> None:
    groups = unanswered.group([
        item("Do you ship to Iceland?"), item("do you ship to iceland"), item("can I pay with crypto", ts=NOW + 1),
        item("¿Enviáis a Islandia?", "es"), item("enviais a islandia", "es"), item("DO YOU SHIP TO ICELAND??"),
    ])  # fmt: skip
    assert [g.count for g in groups] == [3, 2, 1]
    assert unanswered.examples(groups[0]) == [("Do you ship to Iceland?", "en")]  # case and punctuation aside
    assert groups[1].asked[0] == ("¿Enviáis a Islandia?", "es")


def test_the_draft_needs_answers_before_the_bot_can_use_it(tmp_path: Path) -> None:
    groups = unanswered.group([item("Do you ship to Iceland?"), item("¿Enviáis a Islandia?", "es")])
    text = unanswered.draft(groups)
    data = yaml.safe_load(text)
    assert data["entries"][0]["questions"] == {"en": ["Do you ship to Iceland?"]}
    (tmp_path / "new.yaml").write_text(text, encoding="utf-8")
    result = load_dir(tmp_path)
    # Copied as it is, the file is refused: empty answers never reach a customer.
    assert result.kb is None and any("answer" in e.message for e in result.errors)


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
            for text in ("do you ship to iceland", "Do you ship to Iceland?"):
                await unanswered.note(client, item(text, best="islands-shipping", confidence=0.1))
            await unanswered.note(client, item("<b>how long</b> is the warranty", kind="not_helpful",
                                               entry="warranty"))
        finally:
            await client.aclose()

    asyncio.run(seed())
    listed = relevo(redis_url, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "3 questions not answered in the last 30 days" in listed.stdout
    assert "2x  (not understood; near: islands-shipping)" in listed.stdout
    assert "[en] <b>how long</b> is the warranty" in listed.stdout
    as_json = json.loads(relevo(redis_url, tmp_path, "--json").stdout)
    assert [g["count"] for g in as_json["groups"]] == [2, 1] and as_json["noted"] == 3
    draft = relevo(redis_url, tmp_path, "--draft", "--top", "1")
    assert yaml.safe_load(draft.stdout)["entries"][0]["id"] == "new-question-1"
    bad = relevo(redis_url, tmp_path, "--days", "0")
    assert bad.returncode == 2 and "--days" in bad.stderr
