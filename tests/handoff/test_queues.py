import asyncio
import json

import pytest
import redis.asyncio as aioredis

from handoff import audit, keys
from handoff.presence import Presence
from handoff.queues import QueueError
from tests.handoff.queue_helpers import MIN, T0, agent, queues, route


async def test_enqueue_gives_position_state_and_refuses_a_second_time(redis: aioredis.Redis) -> None:
    q = queues(redis)
    assert await q.enqueue("c1", route(), lang="es", channel="web", now=T0) == 1
    assert await q.enqueue("c2", route(), now=T0 + 1000) == 2
    st = await q.state("c1")
    assert st is not None and (st.state, st.queue, st.priority, st.lang, st.channel) == (
        "queued",
        ("general", 1),
        "normal",
        "es",
        "web",
    )
    assert st.reasons == ("asked_for_person",)
    assert await q.position("c2") == 2
    with pytest.raises(QueueError) as err:
        await q.enqueue("c1", route("billing"), now=T0)
    assert err.value.code == "busy"
    with pytest.raises(QueueError):
        await q.enqueue("c9", route("nowhere"), now=T0)


async def test_higher_priority_goes_first_but_waiting_ages_everyone(redis: aioredis.Redis) -> None:
    q = queues(redis, ageing_per_minute=1.0)  # one point = one minute of waiting
    await q.enqueue("normal-early", route(priority="normal"), now=T0)
    await q.enqueue("high-later", route(priority="high"), now=T0 + 5 * MIN)  # +10 points, 5 min later
    await q.enqueue("low-very-early", route(priority="low"), now=T0 - 60 * MIN)
    await q.enqueue("urgent-now", route(priority="urgent"), now=T0 + 10 * MIN)
    # scores: low-very-early T0-60, urgent T0+10-40=-30, high T0+5-20=-15, normal T0-10
    assert await q.waiting("general", 1) == ["low-very-early", "urgent-now", "high-later", "normal-early"]


async def test_claim_next_takes_the_best_head_of_the_queues_the_agent_may_take(redis: aioredis.Redis) -> None:
    q = queues(redis)
    await q.enqueue("g1", route("general", 1), now=T0)
    await q.enqueue("b2", route("billing", 2, "urgent"), now=T0 + MIN)
    await q.enqueue("o1", route("orders", 1, "high"), now=T0 + MIN)
    tier1 = agent("ana", "general", "billing")
    assert (
        await q.claim_next(tier1, now=T0 + 2 * MIN) == "g1"
    )  # billing:2 is above ana's tier; orders not hers
    assert await q.claim_next(tier1, now=T0 + 2 * MIN) is None
    specialist = agent("bea", "billing", tier=2)
    assert await q.claim_next(specialist, now=T0 + 2 * MIN) == "b2"
    boss = agent("sam", role="supervisor")
    assert await q.claim_next(boss, now=T0 + 2 * MIN) == "o1"
    st = await q.state("g1")
    assert st is not None and (st.state, st.agent, st.claimed_at) == ("assigned", "ana", T0 + 2 * MIN)
    assert await q.assigned_to("ana") == ["g1"] and await q.load("ana") == 1


async def test_claim_respects_capacity(redis: aioredis.Redis) -> None:
    q = queues(redis)
    for i in range(3):
        await q.enqueue(f"c{i}", route(), now=T0 + i)
    one = agent("ana", capacity=2)
    assert await q.claim_next(one, now=T0) == "c0"
    assert await q.claim_next(one, now=T0) == "c1"
    with pytest.raises(QueueError) as err:
        await q.claim_next(one, now=T0)
    assert err.value.code == "full"
    with pytest.raises(QueueError) as err:
        await q.claim(one, "c2", now=T0)
    assert err.value.code == "full"
    assert await q.waiting("general", 1) == ["c2"]


async def test_claim_a_particular_conversation(redis: aioredis.Redis) -> None:
    q = queues(redis)
    await q.enqueue("c1", route(), now=T0)
    await q.enqueue("c2", route("returns", 2), now=T0)
    with pytest.raises(QueueError) as err:
        await q.claim(agent("ana", "general"), "c2", now=T0)
    assert err.value.code == "not_allowed"
    await q.claim(agent("ana", "general"), "c1", now=T0)
    with pytest.raises(QueueError) as err:
        await q.claim(agent("bob", "general"), "c1", now=T0)
    assert err.value.code == "gone"


async def test_concurrent_claims_never_double_assign_and_lose_nothing(
    redis_url: str, redis: aioredis.Redis
) -> None:
    q0 = queues(redis)
    total = 300
    for i in range(total):
        await q0.enqueue(f"c{i}", route(priority=("low", "normal", "high")[i % 3]), now=T0 + i)
    clients = [aioredis.Redis.from_url(redis_url, decode_responses=True) for _ in range(4)]
    try:
        qs = [queues(c) for c in clients]
        agents = [agent(f"a{i}", capacity=100) for i in range(100)]
        got: dict[str, list[str]] = {a.name: [] for a in agents}

        async def work(i: int) -> None:
            a = agents[i]
            while (conv := await qs[i % 4].claim_next(a, now=T0 + MIN)) is not None:
                got[a.name].append(conv)

        await asyncio.gather(*(work(i) for i in range(len(agents))))
    finally:
        for c in clients:
            await c.aclose()
    claimed = [c for convs in got.values() for c in convs]
    assert len(claimed) == len(set(claimed)) == total
    assert await q0.length("general", 1) == 0
    for name, convs in got.items():
        assert sorted(await q0.assigned_to(name)) == sorted(convs)
    claims = [e for e in await audit.read(redis, count=10_000) if e.event == "claimed"]
    assert len(claims) == total


async def test_a_lapsed_lease_goes_back_to_the_front_and_a_renewed_one_stays(redis: aioredis.Redis) -> None:
    q = queues(redis, claim_lease_s=30)
    await q.enqueue("c1", route(), now=T0)
    await q.enqueue("c2", route(), now=T0 + 1)
    ana = agent("ana")
    assert await q.claim_next(ana, now=T0) == "c1"
    await q.enqueue("c3", route(priority="urgent"), now=T0 + 2)
    assert await q.renew("ana", now=T0 + 20_000) == 1  # lease until T0+50s
    assert await q.expire_leases(now=T0 + 40_000) == []
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.EVENTS)
    await pubsub.get_message(timeout=1)
    assert await q.expire_leases(now=T0 + 50_001) == ["c1"]
    assert (await q.waiting("general", 1))[0] == "c1"  # ahead even of the urgent c3
    st = await q.state("c1")
    assert st is not None and st.state == "queued" and st.agent == "" and await q.load("ana") == 0
    assert await q.renew("ana", "c1", now=T0 + 50_002) == 0  # a lapsed claim is not revived
    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=2)
    await pubsub.aclose()
    assert msg is not None
    event = json.loads(msg["data"])
    assert (event["event"], event["conv"], event["from"], event["to"]) == (
        "lease_lapsed",
        "c1",
        "ana",
        "general:1",
    )
    lapses = [e for e in await audit.history(redis, "c1") if e.event == "lease_lapsed"]
    assert len(lapses) == 1 and lapses[0].actor == "system"


async def test_claims_lapsing_together_come_back_in_the_queues_own_order(redis: aioredis.Redis) -> None:
    # Each went ahead of the head in turn, so the last one moved came first: a NORMAL conversation
    # back in front of the HIGH one its agent had claimed before it.
    q = queues(redis, claim_lease_s=30)
    await q.enqueue("high", route(priority="high"), now=T0)
    await q.enqueue("normal", route(), now=T0 + 1)
    await q.enqueue("waiting", route(priority="urgent"), now=T0 + 2)
    ana = agent("ana", capacity=3)
    await q.claim(ana, "high", now=T0 + 10)
    await q.claim(ana, "normal", now=T0 + 20)
    assert sorted(await q.expire_leases(now=T0 + 60_000)) == ["high", "normal"]
    assert await q.waiting("general", 1) == ["high", "normal", "waiting"]


async def test_give_back_puts_it_at_the_front(redis: aioredis.Redis) -> None:
    q = queues(redis)
    for i in range(3):
        await q.enqueue(f"c{i}", route(), now=T0 + i)
    ana = agent("ana")
    await q.claim(ana, "c2", now=T0)
    assert await q.release(ana, "c2", now=T0 + MIN) == 1
    assert await q.waiting("general", 1) == ["c2", "c0", "c1"]
    with pytest.raises(QueueError) as err:
        await q.release(ana, "c2", now=T0)
    assert err.value.code == "not_yours"


async def test_transfer_moves_to_another_department_keeping_the_wait(redis: aioredis.Redis) -> None:
    q = queues(redis)
    await q.enqueue("c1", route("general"), now=T0)
    await q.enqueue("b1", route("billing"), now=T0 + 5 * MIN)
    ana = agent("ana")
    await q.claim(ana, "c1", now=T0 + MIN)
    with pytest.raises(QueueError):
        await q.transfer(agent("bob"), "c1", "billing")
    assert await q.transfer(ana, "c1", "billing", note="invoice question", now=T0 + 6 * MIN) == 1
    st = await q.state("c1")
    assert st is not None and st.queue == ("billing", 1) and st.state == "queued"
    assert await q.waiting("billing", 1) == ["c1", "b1"]  # it came earlier, so it stays ahead
    entry = next(e for e in await audit.history(redis, "c1") if e.event == "transferred")
    assert (entry.actor, entry.from_, entry.to, entry.detail) == (
        "ana",
        "ana",
        "billing:1",
        "invoice question",
    )
    with pytest.raises(QueueError) as err:
        await q.transfer(ana, "b1", "nowhere")
    assert err.value.code == "unknown_department"


async def test_escalate_goes_one_tier_up_and_stops_at_the_top(redis: aioredis.Redis) -> None:
    q = queues(redis)
    await q.enqueue("c1", route("returns", 1), now=T0)
    ana = agent("ana", "returns")
    await q.claim(ana, "c1", now=T0)
    assert await q.escalate(ana, "c1", now=T0 + MIN) == 1
    st = await q.state("c1")
    assert st is not None and st.queue == ("returns", 2)
    assert await q.claim_next(ana, now=T0 + MIN) is None  # tier 1 cannot take it now
    boss = agent("sam", role="supervisor")
    assert await q.escalate(boss, "c1", tier=3, now=T0 + MIN) == 1  # supervisors move waiting ones too
    with pytest.raises(QueueError) as err:
        await q.escalate(boss, "c1")
    assert err.value.code == "top"
    kinds = [(e.event, e.from_, e.to) for e in await audit.history(redis, "c1")]
    assert kinds == [
        ("queued", "bot", "returns:1"),
        ("claimed", "returns:1", "ana"),
        ("escalated", "ana", "returns:2"),
        ("escalated", "returns:2", "returns:3"),
    ]


async def test_resolve_and_return_to_bot_end_the_handoff(redis: aioredis.Redis) -> None:
    q = queues(redis)
    await q.enqueue("c1", route(), now=T0)
    await q.enqueue("c2", route(), now=T0)
    ana, bob = agent("ana"), agent("bob")
    await q.claim(ana, "c1", now=T0)
    await q.claim(ana, "c2", now=T0)
    with pytest.raises(QueueError) as err:
        await q.resolve(bob, "c1", "solved")
    assert err.value.code == "not_yours"
    final = await q.resolve(ana, "c1", "refund issued", now=T0 + 90_000)
    assert final.state == "resolved" and final.agent == "ana"
    assert await q.state("c1") is None
    assert await redis.lrange(keys.handled("general"), 0, -1) == ["90.0"]
    await q.return_to_bot(agent("sam", role="supervisor"), "c2", now=T0 + MIN)
    assert await q.state("c2") is None and await q.load("ana") == 0 and await q.assigned_to("ana") == []
    ends = [
        (e.conversation_id, e.event, e.outcome, e.to)
        for e in await audit.read(redis)
        if e.event in ("resolved", "returned_to_bot")
    ]
    assert ends == [("c1", "resolved", "refund issued", "closed"), ("c2", "returned_to_bot", "", "bot")]
    assert await q.enqueue("c1", route(), now=T0 + 2 * MIN) == 1  # a new handoff of the same conversation


async def test_automatic_routing_picks_the_least_loaded_online_agent(redis: aioredis.Redis) -> None:
    q = queues(redis, routing="auto")
    presence = Presence(redis, ttl_s=30)
    ana, bob, cat, dan = agent("ana"), agent("bob"), agent("cat", capacity=1), agent("dan", "billing")
    team = [ana, bob, cat, dan]
    for a in (ana, bob, cat, dan):
        await presence.heartbeat(a.name, now=T0)
    await q.enqueue("x", route(), now=T0)
    await q.claim(ana, "x", now=T0)  # ana has one already
    await q.enqueue("c1", route(), now=T0)
    assert await q.assign_auto("c1", team, now=T0) == "bob"  # bob and cat have 0: bob comes first
    await q.enqueue("c2", route(), now=T0)
    assert await q.assign_auto("c2", team, now=T0) == "cat"
    await q.enqueue("c3", route(), now=T0)
    await presence.heartbeat("bob", "away", now=T0)
    assert await q.assign_auto("c3", team, now=T0) == "ana"  # cat full, bob away, dan not general
    await q.enqueue("c4", route(), now=T0)
    assert await q.assign_auto("c4", team, now=T0 + 31_000) is None  # heartbeats lapsed: nobody online
    assert (await q.state("c4")).state == "queued"  # type: ignore[union-attr]
    assert [e.event for e in await audit.history(redis, "c1")] == ["queued", "assigned"]


async def test_dispatch_assigns_every_queue_head_someone_can_take(redis: aioredis.Redis) -> None:
    q = queues(redis, routing="auto")
    presence = Presence(redis, ttl_s=30)
    team = [agent("ana", "general", capacity=2), agent("bea", "billing", tier=2, capacity=1)]
    for a in team:
        await presence.heartbeat(a.name, now=T0)
    for i in range(3):
        await q.enqueue(f"g{i}", route("general"), now=T0 + i)
    await q.enqueue("b1", route("billing", 2), now=T0)
    await q.enqueue("r1", route("returns"), now=T0)
    done = await q.dispatch(team, now=T0)
    assert sorted(done) == [("b1", "bea"), ("g0", "ana"), ("g1", "ana")]
    assert await q.waiting("general", 1) == ["g2"] and await q.waiting("returns", 1) == ["r1"]


async def test_first_reply_stops_the_reply_timer(redis: aioredis.Redis) -> None:
    q = queues(redis)
    await q.enqueue("c1", route(), now=T0)
    assert await redis.zscore(keys.SLA_REPLY, "c1") == T0 + 600_000
    await q.claim(agent("ana"), "c1", now=T0)
    assert not await q.first_reply("bob", "c1", now=T0 + 1)
    assert await q.first_reply("ana", "c1", now=T0 + 5)
    assert not await q.first_reply("ana", "c1", now=T0 + 9)
    st = await q.state("c1")
    assert st is not None and st.first_reply_at == T0 + 5 and await redis.zscore(keys.SLA_REPLY, "c1") is None


async def test_batched_claims_are_each_atomic(redis: aioredis.Redis) -> None:
    q = queues(redis)
    for i in range(5):
        await q.enqueue(f"c{i}", route(), now=T0 + i)
    ana, bob = agent("ana", capacity=2), agent("bob", capacity=1)
    assert await q.claim_next_batch([ana, bob, ana, bob, ana], now=T0) == ["c0", "c1", "c2", None, None]
    assert sorted(await q.assigned_to("ana")) == ["c0", "c2"] and await q.waiting("general", 1) == [
        "c3",
        "c4",
    ]


async def test_claim_next_compares_heads_across_queues_by_priority_and_age(redis: aioredis.Redis) -> None:
    q = queues(redis, ageing_per_minute=1.0)
    await q.enqueue("general-normal", route("general", 1, "normal"), now=T0)
    await q.enqueue("orders-urgent", route("orders", 1, "urgent"), now=T0 + 20 * MIN)  # 40 points, 20 min on
    await q.enqueue("returns-low", route("returns", 1, "low"), now=T0 - 5 * MIN)
    ana = agent("ana", "general", "orders", "returns", capacity=5)
    got = [await q.claim_next(ana, now=T0 + 30 * MIN) for _ in range(3)]
    # scores: orders T0+20-40=-20, general T0-10, returns T0-5 (minutes)
    assert got == ["orders-urgent", "general-normal", "returns-low"]
