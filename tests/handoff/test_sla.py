import asyncio
import time
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from handoff import audit, keys
from handoff.agents import Agent
from handoff.hours import BusinessHours, Span
from handoff.presence import Presence, now_ms
from handoff.sla import Sweeper, WorkerLease
from tests.handoff.queue_helpers import MIN, T0, agent, open_queues, route


async def test_a_breached_wait_is_raised_and_escalated_one_tier(redis: aioredis.Redis) -> None:
    q = open_queues(redis)
    sweeper = Sweeper(redis, q)
    await q.enqueue("late", route("billing", 1, "normal"), now=T0)  # first reply due in 600 s
    await q.enqueue("fine", route("billing", 1, "normal"), now=T0 + 5 * MIN)
    report = await sweeper.sweep_once(now=T0 + 599_000)
    assert report.breached == []
    report = await sweeper.sweep_once(now=T0 + 601_000)
    assert report.breached == ["late"]
    st = await q.state("late")
    assert st is not None and (st.queue, st.priority, st.state) == (("billing", 2), "high", "queued")
    assert st.reasons == ("asked_for_person", "sla_breach")
    assert await redis.zscore(keys.SLA_REPLY, "late") == T0 + 601_000 + 300_000  # the new level's target
    entry = next(e for e in await audit.history(redis, "late") if e.event == "sla_breach")
    assert (entry.actor, entry.from_, entry.to) == ("system", "billing:1", "billing:2")
    assert "overdue by 1s" in entry.detail
    assert await q.waiting("billing", 1) == ["fine"]


async def test_a_customer_back_in_a_queue_after_a_reply_waits_against_a_new_target(redis: aioredis.Redis) -> None:
    # Before, the first reply stopped the only waiting target: given back (or lapsed, transferred), an
    # upset customer sat at number 1 for 13 minutes with no breach and no "at risk".
    q = open_queues(redis)
    sweeper = Sweeper(redis, q)
    ana = agent("ana")
    await q.enqueue("c", route("general", 1, "high"), now=T0)  # a reply due within 300 s
    await q.claim(ana, "c", now=T0 + 10_000)
    assert await q.first_reply("ana", "c", now=T0 + 20_000)
    assert await redis.zscore(keys.SLA_REPLY, "c") is None
    await q.release(ana, "c", now=T0 + MIN)
    st = await q.state("c")
    assert st is not None and st.reply_due == T0 + MIN + 300_000
    assert await redis.zscore(keys.SLA_REPLY, "c") == T0 + MIN + 300_000
    # Unanswered past it, it is moved up as a first wait is.
    report = await sweeper.sweep_once(now=T0 + MIN + 301_000)
    assert report.breached == ["c"]
    st = await q.state("c")
    assert st is not None and (st.tier, st.priority) == (2, "urgent")
    # The next person's reply meets it: nothing more is due.
    await q.claim(agent("bob", tier=2), "c", now=T0 + 7 * MIN)
    assert not await q.first_reply("bob", "c", now=T0 + 8 * MIN)  # not the first reply of the handoff
    st = await q.state("c")
    assert st is not None and st.reply_due == 0 and st.first_reply_at == T0 + 20_000
    assert await redis.zscore(keys.SLA_REPLY, "c") is None


async def test_top_tier_breach_still_raises_priority(redis: aioredis.Redis) -> None:
    q = open_queues(redis)
    await q.enqueue("c", route("general", 3, "high"), now=T0)
    await Sweeper(redis, q).sweep_once(now=T0 + 301_000)
    st = await q.state("c")
    assert st is not None and (st.tier, st.priority) == (3, "urgent")


async def test_a_wait_at_the_top_tier_and_priority_is_recorded_as_breached_once(redis: aioredis.Redis) -> None:
    q = open_queues(redis)
    sweeper = Sweeper(redis, q)
    await q.enqueue("top", route("general", 3, "urgent"), now=T0)
    for minutes in (10, 20, 40, 80):  # a night's wait, swept again and again
        await sweeper.sweep_once(now=T0 + minutes * MIN)
    st = await q.state("top")
    assert st is not None and (st.tier, st.priority, st.state) == (3, "urgent", "queued")
    assert st.reasons.count("sla_breach") == 0
    breaches = [e.detail for e in await audit.history(redis, "top") if e.event == "sla_breach"]
    late = [d for d in breaches if d.startswith("first reply")]
    assert len(late) == 1 and "top tier and priority" in late[0], breaches


async def test_repeated_breaches_add_the_reason_once(redis: aioredis.Redis) -> None:
    q = open_queues(redis)
    sweeper = Sweeper(redis, q)
    await q.enqueue("slow", route("general", 1, "normal"), now=T0)
    for minutes in (11, 22, 33, 44, 55):
        await sweeper.sweep_once(now=T0 + minutes * MIN)
    st = await q.state("slow")
    assert st is not None and st.reasons.count("sla_breach") == 1


async def test_assigned_without_a_reply_is_recorded_once_and_replied_ones_are_not(
    redis: aioredis.Redis,
) -> None:
    q = open_queues(redis, claim_lease_s=3600)
    sweeper = Sweeper(redis, q)
    ana = agent("ana")
    await q.enqueue("silent", route(), now=T0)
    await q.enqueue("answered", route(), now=T0)
    await q.claim(ana, "silent", now=T0)
    await q.claim(ana, "answered", now=T0)
    await q.first_reply("ana", "answered", now=T0 + 10_000)
    report = await sweeper.sweep_once(now=T0 + 700_000)
    assert report.overdue_replies == ["silent"] and report.breached == []
    assert (await q.state("silent")).state == "assigned"  # type: ignore[union-attr]
    again = await sweeper.sweep_once(now=T0 + 800_000)
    assert again.overdue_replies == []
    breaches = [e for e in await audit.read(redis) if e.event == "sla_breach"]
    # Where it is, not a route: it stays with ana.
    assert [(e.conversation_id, e.detail, e.from_, e.to) for e in breaches] == [
        ("silent", "first reply overdue", "ana", "ana")
    ]


async def test_resolution_target_breach_is_recorded(redis: aioredis.Redis) -> None:
    q = open_queues(redis, claim_lease_s=100_000)
    await q.enqueue("c", route(priority="urgent"), now=T0)  # resolution within 3600 s
    await q.claim(agent("ana"), "c", now=T0)
    await q.first_reply("ana", "c", now=T0 + 1)
    report = await Sweeper(redis, q).sweep_once(now=T0 + 3_600_001)
    assert report.overdue_resolutions == ["c"]
    assert [(e.detail, e.from_, e.to) for e in await audit.history(redis, "c") if e.event == "sla_breach"] == [
        ("resolution overdue", "ana", "ana")
    ]


async def test_sweep_requeues_lapsed_claims(redis: aioredis.Redis) -> None:
    q = open_queues(redis, claim_lease_s=30)
    await q.enqueue("c", route(), now=T0)
    await q.claim(agent("ana"), "c", now=T0)
    await q.first_reply("ana", "c", now=T0 + 1)
    report = await Sweeper(redis, q).sweep_once(now=T0 + 31_000)
    assert report.lapsed == ["c"] and await q.position("c") == 1


async def test_claims_outlast_a_downtime_of_relevo_itself_by_one_lease(
    redis: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    # Tester 21a, O2: stopped 45 s for an upgrade, every claim lapsed at the first sweep after the start,
    # before any console could come back and renew it.
    q = open_queues(redis, claim_lease_s=30)
    await q.enqueue("c", route(), now=T0)
    await q.claim(agent("ana"), "c", now=T0)
    sweeper = Sweeper(redis, q)
    await sweeper.sweep_once(now=T0 + 1_000)  # running: swept just now
    await redis.set(keys.SWEPT_AT, int(time.time() * 1000) - 45_000)  # then nothing swept for 45 s
    caplog.set_level("INFO", logger="handoff.sla")
    report = await sweeper.sweep_once(now=T0 + 46_000)
    assert report.lapsed == [] and (await q.state("c")).state == "assigned"  # type: ignore[union-attr]
    assert await redis.zscore(keys.LEASES, "c") == T0 + 46_000 + 30_000
    assert any("Relevo was down 45 s; 1 claims kept 30 s" in r.getMessage() for r in caplog.records)
    # Not renewed in that time either: it lapses as any claim does (the sweeps are back to back now).
    report = await sweeper.sweep_once(now=T0 + 76_001)
    assert report.lapsed == ["c"]


async def test_auto_routing_runs_in_the_sweep(redis: aioredis.Redis) -> None:
    q = open_queues(redis, routing="auto")
    team = [agent("ana")]
    await Presence(redis, 30).heartbeat("ana", now=T0)

    async def agents() -> list[Agent]:
        return team

    await q.enqueue("c", route(), now=T0)
    report = await Sweeper(redis, q, agents).sweep_once(now=T0 + 1)
    assert report.assigned == [("c", "ana")]


async def test_only_one_worker_sweeps_at_a_time(redis: aioredis.Redis) -> None:
    q = open_queues(redis)
    one, two = Sweeper(redis, q, token="one"), Sweeper(redis, q, token="two")
    assert await one.tick() is not None
    assert await two.tick() is None
    assert await one.tick() is not None  # the holder keeps it
    await one.lease.release()
    assert await two.tick() is not None
    assert await redis.get(keys.lease(keys.SWEEP_LEASE_NAME)) == "two"


async def test_a_worker_lease_lapses_when_not_renewed(redis: aioredis.Redis) -> None:
    a, b = WorkerLease(redis, "t", 0.05, "a"), WorkerLease(redis, "t", 10, "b")
    assert await a.acquire() and not await b.acquire()
    await asyncio.sleep(0.06)
    assert await b.acquire()  # a's lease was not renewed within its 50 ms


async def test_run_loop_sweeps_until_stopped_and_lets_go(redis: aioredis.Redis) -> None:
    q = open_queues(redis, sweep_interval_s=0.05)
    await q.enqueue("old", route(), now=now_ms() - 3600_000)
    stop = asyncio.Event()
    task = asyncio.create_task(Sweeper(redis, q, token="runner").run(stop))
    for _ in range(1000):  # bounded by the test timeout, not by a time assertion
        if [e for e in await audit.history(redis, "old") if e.event == "sla_breach"]:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await task
    assert [e.event for e in await audit.history(redis, "old")] == ["queued", "sla_breach"]
    assert await redis.get(keys.lease(keys.SWEEP_LEASE_NAME)) is None


async def test_a_closed_queues_clock_starts_when_the_department_opens(redis: aioredis.Redis) -> None:
    # T0 is a Friday 08:00 UTC; the department opens at 09:00 UTC: a night's waits are no breaches.
    friday = datetime.fromtimestamp(T0 / 1000, UTC).weekday()
    q = open_queues(redis, hours=BusinessHours((Span(friday, 9 * 60, 18 * 60),), timezone="UTC"))
    await q.enqueue("night", route("billing", 1, "normal"), now=T0 - 10 * MIN)  # first reply due in 600 s
    report = await Sweeper(redis, q).sweep_once(now=T0 + 1000)
    assert report.breached == []
    st = await q.state("night")
    assert st is not None and (st.queue, st.priority) == (("billing", 1), "normal")
    opens = T0 + 60 * MIN
    assert await redis.zscore(keys.SLA_REPLY, "night") == opens + 600_000  # its target, from the opening
    assert await redis.zscore(keys.SLA_RESOLVE, "night") is not None
    assert [e for e in await audit.history(redis, "night") if e.event == "sla_breach"] == []
    report = await Sweeper(redis, q).sweep_once(now=opens + 601_000)  # open, and not answered in time
    assert report.breached == ["night"]
