"""What a waiting customer is told: position in the queue, an estimated wait, and when people are back."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import redis.asyncio as aioredis

from handoff import keys
from handoff.agents import Agent
from handoff.presence import Presence, now_ms
from handoff.queues import HandoffQueues
from handoff.rules import HandoffRules

logger = logging.getLogger(__name__)

# Until a department has resolved anything, a conversation is assumed to take this long.
DEFAULT_HANDLE_S = 300.0
# A few conversations closed within seconds (a customer who had gone, a test) must not promise a waiting
# customer "less than a minute" at number 16: no chat takes less than this on average.
MIN_HANDLE_S = 60.0
MAX_ESTIMATE_S = 24 * 3600
# The wait hash (first place seen, first promise, apology) outlives any wait.
WAIT_TTL_S = 7 * 86400


def estimate_wait_s(
    position: int, handle_times: Sequence[float], slots: int, default_handle_s: float = DEFAULT_HANDLE_S
) -> int | None:
    """Seconds until a person picks up conversation number `position`, or None when nobody is online.

    The desk serves `slots` conversations at once (online agents' capacities) and each takes the
    mean of the recent handling times, so a place frees up every mean/slots seconds on average; the
    first `slots` places in the queue are taken as the next ones free up.
    """
    if slots <= 0:
        return None
    mean = max(MIN_HANDLE_S, sum(handle_times) / len(handle_times)) if handle_times else default_handle_s
    turns = math.ceil(max(position, 1) / slots)
    # The first turn waits on average half a handling time; each later turn a whole one.
    return min(MAX_ESTIMATE_S, round(mean * (turns - 0.5)))


async def note_wait(redis: aioredis.Redis, conversation_id: str, fields: Mapping[str, str | int]) -> None:
    """Write `fields` on the conversation's wait hash (keys.wait_key) and keep it WAIT_TTL_S: one round trip."""
    key = keys.wait_key(conversation_id)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hset(key, mapping=dict(fields))  # type: ignore[arg-type]
        pipe.expire(key, WAIT_TTL_S)
        await pipe.execute()


def paced_wait_s(eta_s: int | None, position: int, moved: int, waited_s: float) -> int | None:
    """The estimate told to a customer: the model's (`eta_s`), but never less than the queue's own pace.

    While this customer has waited `waited_s` in their queue, it moved them up `moved` places; at that
    pace the `position` places still to go take position x waited / moved (at least one place counted,
    so a queue that has not moved at all says "as long again as you have waited, per place"). A
    customer at number 2 who has waited 3 minutes without moving is told about 6 minutes, not "less
    than a minute" because an agent has free capacity; a queue that moves keeps the model's figure.
    None (nobody online) stays None: there is no pace to speak of.
    """
    if eta_s is None:
        return None
    pace = max(position, 1) * max(waited_s, 0.0) / max(moved, 1)
    return min(MAX_ESTIMATE_S, max(eta_s, round(pace)))


@dataclass(frozen=True)
class WaitInfo:
    position: int | None  # None: not waiting
    eta_s: int | None  # None: cannot tell (nobody online, or closed)
    opens_at: datetime | None = None  # set when the department is closed now: when someone will answer
    department: str = ""


class WaitEstimator:
    """Position, estimated wait and next opening for one waiting conversation."""

    def __init__(
        self, redis: aioredis.Redis, queues: HandoffQueues, presence: Presence, rules: HandoffRules
    ) -> None:
        self.redis = redis
        self.queues = queues
        self.presence = presence
        self.rules = rules

    async def handle_times(self, department: str) -> list[float]:
        return [float(v) for v in await self.redis.lrange(keys.handled(department), 0, keys.HANDLED_KEEP - 1)]

    async def slots(self, department: str, tier: int, agents: Sequence[Agent], now: int) -> int:
        online = set(await self.presence.online(now))
        return sum(
            a.capacity for a in agents if a.name in online and not a.disabled and a.may_take(department, tier)
        )

    async def for_conversation(
        self, conversation_id: str, agents: Sequence[Agent], now: int | None = None
    ) -> WaitInfo:
        now = now_ms() if now is None else now
        st = await self.queues.state(conversation_id)
        position = await self.queues.position(conversation_id)
        if st is None or position is None:
            return WaitInfo(None, None)
        dept = self.rules.departments.get(st.department)
        opens_at = dept.hours.next_opening(datetime.fromtimestamp(now / 1000, UTC)) if dept else None
        if opens_at is not None:
            return WaitInfo(position, None, opens_at, st.department)
        eta = estimate_wait_s(
            position,
            await self.handle_times(st.department),
            await self.slots(st.department, st.tier, agents, now),
        )
        moved, waited_s = await self._progress(conversation_id, st.enqueued_at, position, now)
        paced = paced_wait_s(eta, position, moved, waited_s)
        if paced is not None and position > 1:
            # Never sooner than the customer just ahead was told: number 3 hearing "less than a minute"
            # while number 1 has been told "about 6 minutes" is a promise the queue cannot keep.
            paced = max(paced, await self._told_ahead(st.department, st.tier, position))
        return WaitInfo(position, paced, None, st.department)

    async def _told_ahead(self, department: str, tier: int, position: int) -> int:
        """The wait last shown to the conversation one place ahead in the queue (0 when none was)."""
        ahead = await self.queues.waiting(department, tier, limit=position - 1)
        if len(ahead) < position - 1:
            return 0
        shown = await self.redis.hget(keys.wait_key(ahead[-1]), "shown")
        _, _, seconds = str(shown or "").partition(":")
        return int(seconds) if seconds.isdigit() else 0

    async def _progress(self, conversation_id: str, entered_at: int, position: int, now: int) -> tuple[int, float]:
        """(places moved up, seconds) since this conversation was first seen in its current queue: its
        first place and time there are kept in the wait hash, started again when it enters a queue anew."""
        key = keys.wait_key(conversation_id)
        entered, first, seen_at = await self.redis.hmget(key, ["entered_at", "first_position", "first_seen_at"])
        if entered is None or first is None or seen_at is None or int(entered) != entered_at:
            await note_wait(self.redis, conversation_id,
                            {"entered_at": entered_at, "first_position": position, "first_seen_at": now})
            return 0, 0.0
        return int(first) - position, max(0, now - int(seen_at)) / 1000
