"""The retention pass on a real Redis: closed conversations of the engine go, open and queued ones stay."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bot.idle import IdleSweeper
from handoff import audit, keys
from handoff.conversations import now_ms
from handoff.retention import DAY_MS, Retention, backfill
from tests.bot.test_engine import Bot, build, kb_dir, make_settings

__all__ = ["kb_dir"]  # the fixture, shared with the engine tests

YEAR_LATER = 365 * DAY_MS


async def leftovers(redis: aioredis.Redis, *ids: str) -> list[str]:
    """Every key still holding one of these conversation ids in its name."""
    return sorted([k async for k in redis.scan_iter(count=1000) if any(i in k for i in ids)])


async def closed_and_open(bot: Bot) -> tuple[str, str, str]:
    """(closed by a goodbye, still with the bot, queued for a person)."""
    await bot.say("How long does shipping take?", key="web:gone")
    await bot.say("bye", key="web:gone")
    await bot.say("How long does shipping take?", key="web:open")
    await bot.say("I want to talk to a person", key="web:queued")
    gone, open_, queued = [(await bot.conv(k)).id for k in ("web:gone", "web:open", "web:queued")]
    assert (await bot.conv("web:queued")).state == "queued"
    return gone, open_, queued


async def test_a_pass_far_in_the_future_deletes_only_the_closed_conversation(
    redis: aioredis.Redis, kb_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bot = build(redis, make_settings(kb_dir))
    gone, open_, queued = await closed_and_open(bot)
    assert await redis.zscore(keys.CLOSED, gone) is not None  # indexed at the close
    assert await leftovers(redis, gone)
    retention = Retention(redis, keep_days=90)
    assert await retention.run_once(now_ms() + 89 * DAY_MS) == 0  # not old enough yet
    with caplog.at_level(logging.INFO, logger="handoff.retention"):
        assert await retention.run_once(now_ms() + YEAR_LATER) == 1
    assert await leftovers(redis, gone) == []
    assert await redis.get(keys.customer_last("web:gone")) is None
    assert any("retention: deleted 1 conversations closed before" in r.getMessage() for r in caplog.records)
    for cid in (open_, queued):
        assert await redis.exists(keys.conv(cid), keys.conv_log(cid)) == 2
    assert (await bot.conv("web:open")).state == "bot" and (await bot.conv("web:queued")).state == "queued"
    # The customer whose conversation went starts afresh.
    greeting, _ = await bot.say("How long does shipping take?", key="web:gone")
    assert greeting.text.startswith("Hi!")


async def test_a_worker_runs_a_pass_an_hour_at_most(redis: aioredis.Redis, kb_dir: Path) -> None:
    bot = build(redis, make_settings(kb_dir))
    await closed_and_open(bot)
    retention = Retention(redis, keep_days=90)
    later = now_ms() + YEAR_LATER
    assert await retention.run_once(later - 1) == 1  # the one closed conversation
    await bot.say("How long does shipping take?", key="web:gone2")
    await bot.say("bye", key="web:gone2")
    # Due as well, but the idle sweep calls every few seconds: the next pass is an hour on.
    assert await retention.run_once(later + 59 * 60_000) == 0
    assert await redis.exists(keys.conv((await bot.conv("web:gone2")).id)) == 1
    assert await retention.run_once(later + 60 * 60_000) == 1


async def test_zero_days_keeps_everything(redis: aioredis.Redis, kb_dir: Path) -> None:
    bot = build(redis, make_settings(kb_dir))
    gone, _, _ = await closed_and_open(bot)
    assert await Retention(redis, keep_days=0).run_once(now_ms() + 100 * YEAR_LATER) == 0
    assert await redis.exists(keys.conv(gone)) == 1


async def test_a_conversation_a_handoff_still_holds_is_never_deleted(redis: aioredis.Redis, kb_dir: Path) -> None:
    """Even when it is in the closed index by mistake: the queue family says it is waiting."""
    bot = build(redis, make_settings(kb_dir))
    gone, _, queued = await closed_and_open(bot)
    await redis.hset(keys.STATES, queued, json.dumps({"conv": queued, "state": "queued"}))
    await redis.hset(keys.conv(queued), "state", "closed")
    await redis.zadd(keys.CLOSED, {queued: 1})
    assert await Retention(redis, keep_days=1).run_once(now_ms() + YEAR_LATER) == 1  # the goodbye one
    assert await redis.exists(keys.conv(gone)) == 0
    assert await redis.exists(keys.conv(queued), keys.conv_log(queued)) == 2
    assert int(await redis.zscore(keys.CLOSED, queued) or 0) > 1  # looked at again a period later


async def test_rating_comments_of_deleted_conversations_are_blanked_in_the_audit(
    redis: aioredis.Redis, kb_dir: Path
) -> None:
    bot = build(redis, make_settings(kb_dir))
    gone, open_, _ = await closed_and_open(bot)
    await audit.record_rating(redis, gone, 2, comment="write to me at ana@example.com")
    await audit.append(redis, gone, "sla_breach", detail="first reply overdue")
    await audit.record_rating(redis, open_, 5, comment="great, thanks")
    before = await audit.read(redis)
    assert await Retention(redis, keep_days=30).run_once(now_ms() + YEAR_LATER) == 1
    after = await audit.read(redis)
    assert [e.id for e in after] == [e.id for e in before]  # same entries, same ids: figures unchanged
    rated = {e.conversation_id: e for e in after if e.event == "rated"}
    assert rated[gone].detail == "" and rated[gone].outcome == "2"
    assert rated[open_].detail == "great, thanks"
    assert [e.detail for e in after if e.event == "sla_breach"] == ["first reply overdue"]
    assert await redis.exists(keys.AUDIT_REWRITE) == 0


async def test_conversations_closed_before_the_index_are_found_by_the_backfill(
    redis: aioredis.Redis, kb_dir: Path
) -> None:
    bot = build(redis, make_settings(kb_dir))
    gone, _, _ = await closed_and_open(bot)
    await redis.delete(keys.CLOSED)  # as closed by a Relevo before this index
    assert await backfill(redis, now_ms()) == 1
    assert await backfill(redis, now_ms()) == 0  # done for a day
    await redis.delete(keys.CLOSED)
    assert await Retention(redis, keep_days=30).run_once(now_ms() + YEAR_LATER) == 1
    assert await leftovers(redis, gone) == []


async def test_the_idle_sweep_runs_the_retention_pass(redis: aioredis.Redis, kb_dir: Path) -> None:
    bot = build(redis, make_settings(kb_dir))
    gone, _, _ = await closed_and_open(bot)
    sweep = IdleSweeper(redis, bot.conversations, bot.engine, 30.0, retention=Retention(redis, keep_days=30))
    await sweep.sweep_once(now=now_ms() + YEAR_LATER)
    assert await redis.exists(keys.conv(gone)) == 0
