"""What a waiting customer is told: position in the queue, an estimated wait, and when people are back."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
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
        return WaitInfo(position, eta, None, st.department)
