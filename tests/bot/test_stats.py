"""The bot's figures per UTC day on a real Redis: counted in memory, added up in Redis, summed per period."""

from __future__ import annotations

from datetime import date

import pytest
import redis.asyncio as aioredis

from bot import stats
from bot.stats import BotStats
from handoff import keys

DAY1 = 1_800_000_000_000  # 2027-01-15 08:00 UTC
DAY2 = DAY1 + 86_400_000


async def test_counts_add_up_across_workers_and_days(redis: aioredis.Redis) -> None:
    one, two = BotStats(redis), BotStats(redis)  # two workers on one Redis
    for name in ("conversations", "answered", "answered", "helpful_yes"):
        one.count(name, at=DAY1)  # type: ignore[arg-type]
    for name in ("conversations", "not_understood", "handed_over", "helpful_no"):
        two.count(name, at=DAY2)  # type: ignore[arg-type]
    assert await redis.exists(keys.bot_stats("2027-01-15")) == 0  # nothing in Redis until a flush
    await one.flush()
    await two.flush()
    await two.flush()  # nothing new: nothing added twice
    assert 0 < await redis.ttl(keys.bot_stats("2027-01-15")) <= stats.KEEP_DAYS * 86400
    both = await stats.read(redis, date(2027, 1, 15), date(2027, 1, 16))
    assert (both["conversations"], both["answered"], both["not_understood"], both["handed_over"]) == (2, 2, 1, 1)
    assert both["contained_rate"] == 0.5 and both["helpful_rate"] == 0.5 and both["days"] == 2
    first = await stats.read(redis, date(2027, 1, 15), date(2027, 1, 15))
    assert (first["conversations"], first["handed_over"], first["contained_rate"]) == (1, 0, 1.0)
    empty = await stats.read(redis, date(2020, 1, 1), date(2020, 1, 31))
    assert empty["conversations"] == 0 and empty["contained_rate"] is None and empty["helpful_rate"] is None


async def test_a_day_counted_before_conversations_were_counted_apart_reads_its_handoffs(
    redis: aioredis.Redis,
) -> None:
    await redis.hset(keys.bot_stats("2027-01-15"), mapping={"conversations": 4, "handed_over": 1})
    counted = BotStats(redis)
    for name in ("conversations", "conversations", "handed_over", "handed_over", "conversations_handed_over"):
        counted.count(name, at=DAY2)  # type: ignore[arg-type]
    await counted.flush()
    both = await stats.read(redis, date(2027, 1, 15), date(2027, 1, 16))
    assert (both["conversations"], both["handed_over"], both["conversations_handed_over"]) == (6, 3, 2)
    assert both["contained_rate"] == round(1 - 2 / 6, 3)


async def test_a_period_must_be_a_real_one(redis: aioredis.Redis) -> None:
    with pytest.raises(ValueError, match="ends before it starts"):
        await stats.read(redis, date(2027, 1, 2), date(2027, 1, 1))
    with pytest.raises(ValueError, match="at most 400 days"):
        await stats.read(redis, date(2025, 1, 1), date(2027, 1, 1))


async def test_counts_a_flush_could_not_write_are_kept_for_the_next(redis: aioredis.Redis) -> None:
    counter = BotStats(redis)
    counter.count("answered", at=DAY1)
    broken = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    counter.redis = broken
    with pytest.raises(Exception):  # noqa: B017 - whatever the dead address raises
        await counter.flush()
    await broken.aclose()
    counter.redis = redis
    await counter.flush()
    assert (await stats.read(redis, date(2027, 1, 15), date(2027, 1, 15)))["answered"] == 1
