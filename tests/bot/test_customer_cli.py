"""`relevo customer export | forget` as a real process, on conversations the real engine made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import redis.asyncio as aioredis

from handoff import audit, keys
from handoff.retention import customer_conversations
from tests.bot.test_engine import Bot, build, kb_dir, make_settings
from tests.conftest import CONFIG_DIR, ROOT
from tests.handoff.queue_helpers import queues, route

__all__ = ["kb_dir"]  # the fixture, shared with the engine tests

SECRET_WORDS = "my address is Calle Mayor 5"


def relevo(redis_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELEVO_")}
    env["REDIS_URL"] = redis_url
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(CONFIG_DIR), "customer", *args, "--data", str(tmp_path)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=50, stdin=subprocess.DEVNULL,
    )  # fmt: skip


async def two_customers(bot: Bot) -> tuple[list[str], list[str]]:
    """ana: a conversation closed by her goodbye, a rating comment on it, then a new open one; bob: one."""
    await bot.say("How long does shipping take?", key="web:ana")
    await bot.say(SECRET_WORDS, key="web:ana")
    first = (await bot.conv("web:ana")).id
    await audit.record_rating(bot.redis, first, 3, comment=SECRET_WORDS)
    await bot.say("bye", key="web:ana")
    await bot.say("¿Cuánto tarda el envío?", key="web:ana")
    await bot.say("How long does shipping take?", key="web:bob")
    ana = await customer_conversations(bot.redis, "web:ana")
    bob = await customer_conversations(bot.redis, "web:bob")
    assert len(ana) == 2 and ana[0] == first and len(bob) == 1
    return ana, bob


async def holding(redis: aioredis.Redis, *ids: str) -> list[str]:
    return sorted([k async for k in redis.scan_iter(count=1000) if any(i in k for i in ids)])


async def test_export_prints_every_conversation_with_its_transcript(
    redis: aioredis.Redis, redis_url: str, kb_dir: Path, tmp_path: Path
) -> None:
    bot = build(redis, make_settings(kb_dir))
    ana, bob = await two_customers(bot)
    done = relevo(redis_url, tmp_path, "export", "web:ana")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["customer"] == "web:ana" and [c["id"] for c in out["conversations"]] == ana
    texts = [e["text"] for c in out["conversations"] for e in c["transcript"]]
    assert SECRET_WORDS in texts and "¿Cuánto tarda el envío?" in texts
    assert out["conversations"][0]["record"]["state"] == "closed"
    assert bob[0] not in done.stdout
    # A conversation id finds the same customer.
    by_id = relevo(redis_url, tmp_path, "export", ana[1])
    assert [c["id"] for c in json.loads(by_id.stdout)["conversations"]] == ana


async def test_forget_asks_then_deletes_every_key_of_the_customer_and_nothing_else(
    redis: aioredis.Redis, redis_url: str, kb_dir: Path, tmp_path: Path
) -> None:
    bot = build(redis, make_settings(kb_dir))
    ana, bob = await two_customers(bot)
    unsure = relevo(redis_url, tmp_path, "forget", "web:ana")
    assert unsure.returncode == 2 and "relevo: " in unsure.stderr and "--yes" in unsure.stderr
    assert await redis.exists(keys.conv(ana[0])) == 1

    done = relevo(redis_url, tmp_path, "forget", "web:ana", "--yes")
    assert done.returncode == 0, done.stderr
    assert "forgot web:ana: 2 conversation(s)" in done.stdout and "1 audit comment(s) blanked" in done.stdout
    assert SECRET_WORDS not in done.stdout + done.stderr
    assert await holding(redis, *ana, "web:ana") == []
    assert await redis.zscore(keys.ACTIVE, ana[1]) is None and await redis.zscore(keys.CLOSED, ana[0]) is None
    rated = [e for e in await audit.read(redis) if e.conversation_id == ana[0] and e.event == "rated"]
    assert rated and rated[0].detail == "" and rated[0].outcome == "3"
    assert await redis.exists(keys.conv(bob[0]), keys.conv_log(bob[0]), keys.customer("web:bob")) == 3


async def test_forget_refuses_a_queued_conversation_unless_forced(
    redis: aioredis.Redis, redis_url: str, kb_dir: Path, tmp_path: Path
) -> None:
    bot = build(redis, make_settings(kb_dir))
    await bot.say("How long does shipping take?", key="web:carl")
    cid = (await bot.conv("web:carl")).id
    await queues(redis).enqueue(cid, route())
    await bot.conversations.set_state(cid, "queued")

    refused = relevo(redis_url, tmp_path, "forget", "web:carl", "--yes")
    assert refused.returncode == 1 and f"relevo: conversation {cid} of web:carl is queued" in refused.stderr
    assert await redis.exists(keys.conv(cid), keys.conv_log(cid)) == 2

    forced = relevo(redis_url, tmp_path, "forget", "web:carl", "--yes", "--force")
    assert forced.returncode == 0, forced.stderr
    assert await holding(redis, cid, "web:carl") == []
    assert await redis.hget(keys.STATES, cid) is None
    assert [e.event for e in await audit.read(redis) if e.conversation_id == cid] == ["queued", "abandoned"]
