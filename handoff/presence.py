"""Agent presence (online / away / offline), kept alive by heartbeats that lapse after a TTL."""

from __future__ import annotations

import logging
import time
from typing import Literal

import redis.asyncio as aioredis

from handoff import keys

logger = logging.getLogger(__name__)

Status = Literal["online", "away", "offline"]


def now_ms() -> int:
    return int(time.time() * 1000)


class Presence:
    """An agent is online/away while its console's heartbeat is younger than `ttl_s`."""

    def __init__(self, redis: aioredis.Redis, ttl_s: float) -> None:
        self.redis = redis
        self.ttl_ms = int(ttl_s * 1000)

    async def heartbeat(self, name: str, status: Status = "online", now: int | None = None) -> None:
        """Called by the agent's connection every few seconds; "offline" signs out at once."""
        expiry = (now_ms() if now is None else now) + self.ttl_ms
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(keys.PRESENCE_ONLINE, name)
        pipe.zrem(keys.PRESENCE_AWAY, name)
        if status == "online":
            pipe.zadd(keys.PRESENCE_ONLINE, {name: expiry})
        elif status == "away":
            pipe.zadd(keys.PRESENCE_AWAY, {name: expiry})
        await pipe.execute()

    async def status(self, name: str, now: int | None = None) -> Status:
        now = now_ms() if now is None else now
        online, away = (
            await self.redis.zmscore(keys.PRESENCE_ONLINE, [name]),
            await self.redis.zmscore(keys.PRESENCE_AWAY, [name]),
        )
        if online[0] is not None and online[0] > now:
            return "online"
        if away[0] is not None and away[0] > now:
            return "away"
        return "offline"

    async def online(self, now: int | None = None) -> list[str]:
        """Names of the agents online now; lapsed heartbeats are dropped on the way."""
        now = now_ms() if now is None else now
        await self.redis.zremrangebyscore(keys.PRESENCE_ONLINE, "-inf", now)
        await self.redis.zremrangebyscore(keys.PRESENCE_AWAY, "-inf", now)
        names = await self.redis.zrangebyscore(keys.PRESENCE_ONLINE, f"({now}", "+inf")
        return sorted(n.decode() if isinstance(n, bytes) else str(n) for n in names)
