from dataclasses import replace
from datetime import UTC, datetime

import redis.asyncio as aioredis

from handoff import keys
from handoff.estimate import DEFAULT_HANDLE_S, MIN_HANDLE_S, WaitEstimator, estimate_wait_s
from handoff.hours import BusinessHours, parse_spec
from handoff.presence import Presence
from handoff.queues import HandoffQueues
from handoff.rules import Department, HandoffRules
from tests.handoff.queue_helpers import MIN, agent, queues, route


def with_department(rules: HandoffRules, department: Department) -> HandoffRules:
    return replace(rules, departments={**rules.departments, department.name: department})


def open_desk(redis: aioredis.Redis) -> tuple[HandoffQueues, Presence, WaitEstimator, int]:
    """Queues, presence and the estimator of a desk open around the clock (the shipped file has office
    hours; these tests are about the estimate), and a moment to run them at."""
    q = queues(redis)
    presence = Presence(redis, 30)
    q.rules = with_department(q.rules, Department("general", {"en": "Help"}))
    now = int(datetime(2026, 11, 25, 12, 0, tzinfo=UTC).timestamp() * 1000)
    return q, presence, WaitEstimator(redis, q, presence, q.rules), now


def test_estimate_from_handling_times_and_slots() -> None:
    assert estimate_wait_s(1, [120.0, 240.0], slots=2) == 90  # half a mean handling time
    assert estimate_wait_s(3, [120.0, 240.0], slots=2) == 270  # second turn
    assert estimate_wait_s(5, [], slots=1) == round(DEFAULT_HANDLE_S * 4.5)
    assert estimate_wait_s(4, [60.0], slots=0) is None  # nobody online: cannot tell
    assert estimate_wait_s(10**6, [3600.0], slots=1) == 24 * 3600  # capped
    # Conversations closed in seconds do not make number 16 "less than a minute" away.
    assert estimate_wait_s(16, [4.0, 6.0, 5.0], slots=3) == round(MIN_HANDLE_S * 5.5)


async def test_wait_info_for_a_waiting_conversation(redis: aioredis.Redis) -> None:
    q, presence, est, now = open_desk(redis)
    team = [agent("ana", capacity=1), agent("bob", capacity=1), agent("dan", "billing", capacity=5)]
    for name in ("ana", "bob", "dan"):
        await presence.heartbeat(name, now=now)
    for i in range(4):
        await q.enqueue(f"c{i}", route(), now=now - 10 * MIN + i)
    for seconds in (100, 200, 300):
        await q._record_handling("general", seconds)
    info = await est.for_conversation("c3", team, now=now)
    assert (info.position, info.eta_s, info.opens_at) == (4, 300, None)  # 2 slots: second turn, mean 200 s
    assert (await est.for_conversation("nope", team, now=now)).position is None
    await presence.heartbeat("bob", "offline", now=now)
    assert (await est.for_conversation("c0", team, now=now)).eta_s == 100


async def test_no_one_is_told_a_shorter_wait_than_the_customer_ahead(redis: aioredis.Redis) -> None:
    q, presence, est, now = open_desk(redis)
    team = [agent("ana", capacity=3)]
    await presence.heartbeat("ana", now=now)
    for i in range(3):
        await q.enqueue(f"c{i}", route(), now=now - 10 * MIN + i)
    # By the model, 3 slots: all three "half a handling time" (150 s) ...
    assert (await est.for_conversation("c2", team, now=now)).eta_s == 150
    # ... but number 2 has been shown about 6 minutes (the queue has not been moving): number 3 is not
    # promised less.
    await q.redis.hset(keys.wait_key("c1"), "shown", "2:360")
    assert (await est.for_conversation("c2", team, now=now)).eta_s == 360
    assert (await est.for_conversation("c0", team, now=now)).eta_s == 150  # nobody ahead of number 1


async def test_outside_business_hours_it_says_when_someone_answers(redis: aioredis.Redis) -> None:
    q = queues(redis)
    spans = tuple(parse_spec("mon-fri 09:00-18:00"))
    q.rules = with_department(
        q.rules, Department("general", {"en": "Help"}, BusinessHours(spans, frozenset(), "UTC"))
    )
    est = WaitEstimator(redis, q, Presence(redis, 30), q.rules)
    friday_night = int(datetime(2026, 11, 27, 22, 0, tzinfo=UTC).timestamp() * 1000)
    await q.enqueue("c", route(), now=friday_night)
    info = await est.for_conversation("c", [agent("ana")], now=friday_night)
    assert info.position == 1 and info.eta_s is None
    assert info.opens_at == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
