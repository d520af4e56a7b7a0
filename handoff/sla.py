"""The handoff sweeper: lapsed claim leases, SLA breaches and automatic routing, one worker at a time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import redis.asyncio as aioredis

from handoff import audit, keys, lua
from handoff.agents import Agent
from handoff.outage import REDIS as REDIS_OUTAGE
from handoff.presence import now_ms
from handoff.queues import HandoffQueues, HandoffState, QueueError
from handoff.rules import MAX_TIER

logger = logging.getLogger(__name__)

BATCH = 100
AgentSource = Callable[[], Awaitable[Sequence[Agent]]]
# Called with the sweep's time after each sweep: customer notices that fall due by themselves.
NoticeSource = Callable[[int], Awaitable[object]]


class WorkerLease:
    """A Redis lease (SET NX PX, renewed by its holder) so that only one process runs a job."""

    def __init__(self, redis: aioredis.Redis, name: str, ttl_s: float, token: str | None = None) -> None:
        self.redis = redis
        self.key = keys.lease(name)
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.token = token or secrets.token_hex(8)
        self._take = redis.register_script(lua.RENEW_LEASE)
        self._drop = redis.register_script(lua.RELEASE_LEASE)

    async def acquire(self) -> bool:
        """Take the lease, or keep it if this worker holds it; False while another worker holds it."""
        return bool(await self._take(keys=[self.key], args=[self.token, self.ttl_ms]))

    async def release(self) -> None:
        await self._drop(keys=[self.key], args=[self.token])


@dataclass
class SweepReport:
    lapsed: list[str] = field(default_factory=list)  # claims that went back to the queue
    breached: list[str] = field(default_factory=list)  # waits raised and escalated
    overdue_replies: list[str] = field(default_factory=list)  # assigned, no first reply in time
    overdue_resolutions: list[str] = field(default_factory=list)
    assigned: list[tuple[str, str]] = field(default_factory=list)  # automatic routing


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class Sweeper:
    """Every `sweep_interval_s`, the worker holding the lease requeues lapsed claims and handles SLA breaches.

    A breached wait is raised one priority level and escalated one tier (audit: sla_breach); an
    assigned conversation past its first-reply or resolution target is recorded once.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        queues: HandoffQueues,
        agents: AgentSource | None = None,
        token: str | None = None,
        notices: NoticeSource | None = None,
    ) -> None:
        self.redis = redis
        self.queues = queues
        self.agents = agents
        self.notices = notices
        self.interval = queues.settings.sweep_interval_s
        # The lease outlives a few missed sweeps, so a slow sweep does not hand the job to another worker.
        self.lease = WorkerLease(redis, keys.SWEEP_LEASE_NAME, max(3 * self.interval, 1.0), token)

    async def _due(self, key: str, now: int) -> list[tuple[str, int]]:
        rows = await self.redis.zrangebyscore(key, "-inf", now, start=0, num=BATCH, withscores=True)
        pairs = cast(list[tuple[Any, float]], rows)
        return [(_text(c), int(s)) for c, s in pairs]

    async def _deferred(self, key: str, conv: str, st: HandoffState | None, now: int) -> bool:
        """Nobody works a closed queue: a wait's deadline (`key`: SLA_REPLY or SLA_RESOLVE) that falls due
        while its department is closed is set again to the opening plus its target, rather than a night's
        waits breaching and moving up a tier out of sight of the tier that starts at 9. True if so."""
        if st is None or st.state != "queued":
            return False
        rules = self.queues.rules
        dept = rules.departments.get(st.department)
        opening = dept.hours.next_opening(datetime.fromtimestamp(now / 1000, UTC)) if dept is not None else None
        if opening is None:
            return False
        prio = next((p for p in rules.priorities if p.name == st.priority), rules.priorities[0])
        target_s = prio.first_reply_s if key == keys.SLA_REPLY else prio.resolution_s
        await self.redis.zadd(key, {conv: int(opening.timestamp() * 1000) + target_s * 1000})
        return True

    async def _reply_deadlines(self, now: int, report: SweepReport) -> None:
        for conv, deadline in await self._due(keys.SLA_REPLY, now):
            st = await self.queues.state(conv)
            if await self._deferred(keys.SLA_REPLY, conv, st, now):
                continue
            if st is not None and st.state == "queued" and self._at_the_top(st.tier, st.priority):
                # Nowhere higher to go: recorded once, not again at every new deadline (a night's wait
                # would pile up hundreds of breaches and badges).
                await audit.append(
                    self.redis, conv, "sla_breach", from_=st.queue_name, to=st.queue_name, reasons=st.reasons,
                    detail=f"first reply overdue by {(now - deadline) / 1000:.0f}s (top tier and priority)", now=now,
                )  # fmt: skip
                report.breached.append(conv)
                await self.redis.zrem(keys.SLA_REPLY, conv)
                continue
            if st is not None and st.state == "queued":
                try:
                    await self.queues.breach(conv, (now - deadline) / 1000, now=now)
                    report.breached.append(conv)
                    continue
                except QueueError as exc:
                    logger.info("SLA breach of %s not moved: %s", conv, exc)
                    st = await self.queues.state(conv)
            if st is not None and st.state == "assigned":
                # Recorded where it is: it stays with the agent, and "agent → queue" would read as a move.
                await audit.append(
                    self.redis,
                    conv,
                    "sla_breach",
                    from_=st.agent,
                    to=st.agent,
                    reasons=st.reasons,
                    detail="first reply overdue",
                    now=now,
                )
                report.overdue_replies.append(conv)
            # Recorded, or no handoff any more: either way this deadline is done.
            await self.redis.zrem(keys.SLA_REPLY, conv)

    def _at_the_top(self, tier: int, priority: str) -> bool:
        return tier >= MAX_TIER and self.queues.rules.raised(priority).name == priority

    async def _resolve_deadlines(self, now: int, report: SweepReport) -> None:
        for conv, _ in await self._due(keys.SLA_RESOLVE, now):
            st = await self.queues.state(conv)
            if await self._deferred(keys.SLA_RESOLVE, conv, st, now):
                continue
            if st is not None:
                await audit.append(
                    self.redis,
                    conv,
                    "sla_breach",
                    from_=st.agent or st.queue_name,
                    to=st.agent or st.queue_name,
                    reasons=st.reasons,
                    detail="resolution overdue",
                    now=now,
                )
                report.overdue_resolutions.append(conv)
            await self.redis.zrem(keys.SLA_RESOLVE, conv)

    async def _grace_after_downtime(self, now: int) -> int:
        """After Relevo itself was down longer than a claim lease (an upgrade, a host reboot), nobody's
        console could renew their claims: each gets one lease length from now to reconnect and renew,
        rather than every conversation being taken from its agent at the first sweep. How many."""
        clock = int(time.time() * 1000)  # real time: a gap in sweeps, whatever `now` a caller passes
        last = await self.redis.set(keys.SWEPT_AT, clock, get=True)
        if last is None or clock - int(last) <= self.queues.lease_ms:
            return 0
        until = now + self.queues.lease_ms
        held = cast(list[str], await self.redis.zrangebyscore(keys.LEASES, "-inf", until))
        if held:
            await self.redis.zadd(keys.LEASES, dict.fromkeys(held, until), gt=True)
            logger.info("sweep: Relevo was down %.0f s; %d claims kept %.0f s for their consoles to come back",
                        (clock - int(last)) / 1000, len(held), self.queues.lease_ms / 1000)
        return len(held)

    async def sweep_once(self, now: int | None = None) -> SweepReport:
        """One pass (the caller must hold the lease; `run` does)."""
        now = now_ms() if now is None else now
        await self._grace_after_downtime(now)
        report = SweepReport(lapsed=await self.queues.expire_leases(now))
        await self._reply_deadlines(now, report)
        await self._resolve_deadlines(now, report)
        if self.agents is not None and self.queues.settings.routing == "auto":
            report.assigned = await self.queues.dispatch(await self.agents(), now)
        if self.notices is not None:
            try:
                await self.notices(now)
            except (aioredis.RedisError, OSError):
                raise
            except Exception:
                logger.exception("sweep: customer wait notices failed")
        if report.lapsed or report.breached or report.overdue_replies or report.overdue_resolutions:
            logger.info(
                "sweep: %d lapsed, %d breached, %d replies and %d resolutions overdue",
                len(report.lapsed),
                len(report.breached),
                len(report.overdue_replies),
                len(report.overdue_resolutions),
            )
        return report

    async def tick(self, now: int | None = None) -> SweepReport | None:
        """Sweep if this worker holds (or takes) the lease; None when another worker has it."""
        if not await self.lease.acquire():
            return None
        return await self.sweep_once(now)

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep until `stop` is set; errors are logged and the loop goes on."""
        try:
            while not stop.is_set():
                try:
                    await self.tick()
                except (aioredis.RedisError, OSError) as exc:
                    if not REDIS_OUTAGE.failed("handoff sweep", exc):
                        logger.exception("handoff sweep failed; retrying in %.1fs", self.interval)
                else:
                    REDIS_OUTAGE.ok()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.interval)
        finally:
            await asyncio.shield(self.lease.release())
