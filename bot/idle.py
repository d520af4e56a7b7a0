"""Closes conversations left idle with the bot, with a closing message; one worker sweeps at a time."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Protocol

import redis.asyncio as aioredis

from handoff import keys
from handoff.conversations import Conversations, now_ms
from handoff.outage import REDIS as REDIS_OUTAGE

logger = logging.getLogger(__name__)

MAX_PER_SWEEP = 200

# KEYS[1] lease key; ARGV[1] holder, ARGV[2] ttl ms. Returns 1 if the caller holds the lease now.
LEASE_LUA = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
# KEYS[1] lease key; ARGV[1] holder. Deletes the lease only if the caller holds it.
RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Closer(Protocol):
    async def close_idle(self, conversation_id: str, idle_before: int) -> bool: ...


class Pass(Protocol):
    """More once-only work for the sweep's worker (handoff.retention.Retention)."""

    async def run_once(self, now: int | None = None) -> int: ...


class IdleSweeper:
    def __init__(self, redis: aioredis.Redis, conversations: Conversations, closer: Closer,
                 idle_minutes: float, interval_s: float | None = None, retention: Pass | None = None) -> None:
        self.conversations = conversations
        self.closer = closer
        # Deleting old closed conversations rides on this sweep's lease and interval: one worker at a time.
        self.retention = retention
        self.idle_ms = int(idle_minutes * 60_000)
        # Sweep often enough that nothing overstays by more than a tenth, but not in a busy loop.
        self.interval_s = interval_s if interval_s is not None else min(max(idle_minutes * 6.0, 1.0), 60.0)
        self.lease_ms = int(max(self.interval_s * 3, 10.0) * 1000)
        self.holder = uuid.uuid4().hex
        self._lease = redis.register_script(LEASE_LUA)
        self._release = redis.register_script(RELEASE_LUA)
        self._key = keys.lease(keys.IDLE_LEASE_NAME)

    async def hold_lease(self) -> bool:
        return bool(await self._lease(keys=[self._key], args=[self.holder, self.lease_ms]))

    async def release(self) -> None:
        await self._release(keys=[self._key], args=[self.holder])

    async def sweep_once(self, now: int | None = None) -> int:
        """Close what has been idle long enough, if this worker holds the lease; returns how many closed."""
        if not await self.hold_lease():
            return 0
        cutoff = (now if now is not None else now_ms()) - self.idle_ms
        closed = 0
        for cid in await self.conversations.idle(cutoff, MAX_PER_SWEEP):
            try:
                closed += await self.closer.close_idle(cid, cutoff)
            except Exception as exc:
                if not REDIS_OUTAGE.failed("idle close", exc):
                    logger.exception("idle: closing %s failed", cid)
        if closed:
            logger.info("idle: closed %d conversation(s)", closed)
        if self.retention is not None:
            try:
                await self.retention.run_once(now)
            except Exception as exc:
                if not REDIS_OUTAGE.failed("retention", exc):
                    logger.exception("retention: pass failed")
        return closed

    async def run(self) -> None:
        """Sweep every interval until cancelled; gives the lease back on the way out."""
        try:
            while True:
                try:
                    await self.sweep_once()
                except Exception as exc:
                    if not REDIS_OUTAGE.failed("idle sweep", exc):
                        logger.exception("idle: sweep failed")
                else:
                    REDIS_OUTAGE.ok()
                await asyncio.sleep(self.interval_s)
        finally:
            try:
                await asyncio.shield(self.release())
            except Exception:
                logger.warning("idle: could not release the lease")
