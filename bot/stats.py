"""The bot's own figures for the people who run the desk: conversations, answers, "did this help?",
misunderstandings and handoffs, counted per UTC day in Redis.

Counted in memory and added to Redis every few seconds (one pipeline of HINCRBY): a count costs the
customer's turn nothing, several workers add up, and a crash loses a few seconds of figures, never a
message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, get_args

import redis.asyncio as aioredis

from handoff import keys
from handoff.outage import REDIS as REDIS_OUTAGE
from handoff.presence import now_ms

logger = logging.getLogger(__name__)

# handed_over: handoffs; conversations_handed_over: conversations at their first handoff (a customer
# back to a person in the same conversation is one more handoff, not one more conversation).
Counted = Literal["conversations", "answered", "clarified", "not_understood", "helpful_yes", "helpful_no",
                  "handed_over", "conversations_handed_over"]
COUNTED: tuple[str, ...] = get_args(Counted)
FLUSH_S = 5.0
KEEP_DAYS = 400  # a year of figures, with room for a year-on-year look
MAX_DAYS = KEEP_DAYS  # the longest period one request sums


def day_of(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).date().isoformat()


class BotStats:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._pending: Counter[tuple[str, Counted]] = Counter()

    def count(self, name: Counted, at: int | None = None) -> None:
        self._pending[(day_of(now_ms() if at is None else at), name)] += 1

    async def flush(self) -> None:
        """Add what was counted since the last flush to Redis; kept for the next one if Redis fails."""
        taken, self._pending = self._pending, Counter()
        if not taken:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for (day, name), n in taken.items():
                    pipe.hincrby(keys.bot_stats(day), name, n)
                for day in {d for d, _ in taken}:
                    pipe.expire(keys.bot_stats(day), KEEP_DAYS * 86400)
                await pipe.execute()
        except Exception:
            self._pending.update(taken)
            raise

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every FLUSH_S until `stop`, and once more then."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), FLUSH_S)
            try:
                await self.flush()
            except Exception as exc:
                if not REDIS_OUTAGE.failed("bot figures", exc):
                    logger.exception("bot figures: could not add them to Redis; trying again in %.0fs", FLUSH_S)


async def read(redis: aioredis.Redis, first: date, last: date) -> dict[str, Any]:
    """The counts of the days first..last (UTC, both included) summed, with the shares a manager reads:
    contained (conversations the bot finished without a person) and found helpful (of those asked)."""
    if last < first:
        raise ValueError("the period ends before it starts")
    if (last - first).days + 1 > MAX_DAYS:
        raise ValueError(f"at most {MAX_DAYS} days at once")
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    async with redis.pipeline(transaction=False) as pipe:
        for day in days:
            pipe.hgetall(keys.bot_stats(day.isoformat()))
        rows = await pipe.execute()
    totals: dict[str, int] = dict.fromkeys(COUNTED, 0)
    for row in rows:
        row = row or {}
        if "handed_over" in row and "conversations_handed_over" not in row:
            # A day counted before conversations were counted apart from handoffs: the nearest figure.
            row = {**row, "conversations_handed_over": row["handed_over"]}
        for name, value in row.items():
            if name in totals:
                totals[name] += int(value)
    conversations, asked = totals["conversations"], totals["helpful_yes"] + totals["helpful_no"]
    handed = totals["conversations_handed_over"]
    return {
        "from": first.isoformat(), "to": last.isoformat(), "days": len(days), **totals,
        "contained_rate": round(max(0.0, 1 - handed / conversations), 3) if conversations else None,
        "helpful_rate": round(totals["helpful_yes"] / asked, 3) if asked else None,
    }  # fmt: skip
