import json

import pytest
import redis.asyncio as aioredis

from handoff import audit, keys
from tests.handoff.queue_helpers import MIN, T0, agent, queues, route


async def test_every_state_change_is_in_the_record_and_on_the_events_channel(redis: aioredis.Redis) -> None:
    q = queues(redis)
    pubsub = redis.pubsub()
    await pubsub.subscribe(keys.EVENTS)
    await pubsub.get_message(timeout=1)
    ana, bea, sam = agent("ana", "orders"), agent("bea", "billing", tier=2), agent("sam", role="supervisor")
    await q.enqueue("c", route("orders", 1, "high", "upset"), now=T0)
    await q.claim(ana, "c", now=T0 + MIN)
    await q.transfer(ana, "c", "billing", note="it is about an invoice", now=T0 + 2 * MIN)
    await q.escalate(sam, "c", now=T0 + 3 * MIN)
    await q.claim(bea, "c", now=T0 + 4 * MIN)
    await q.release(bea, "c", now=T0 + 5 * MIN)
    await q.claim(bea, "c", now=T0 + 6 * MIN)
    await q.resolve(bea, "c", "refund issued", now=T0 + 9 * MIN)
    await audit.record_rating(redis, "c", 5, now=T0 + 10 * MIN)
    got = [(e.event, e.actor, e.from_, e.to, e.outcome) for e in await audit.history(redis, "c")]
    assert got == [
        ("queued", "bot", "bot", "orders:1", ""),
        ("claimed", "ana", "orders:1", "ana", ""),
        ("transferred", "ana", "ana", "billing:1", ""),
        ("escalated", "sam", "billing:1", "billing:2", ""),
        ("claimed", "bea", "billing:2", "bea", ""),
        ("released", "bea", "bea", "billing:2", ""),
        ("claimed", "bea", "billing:2", "bea", ""),
        ("resolved", "bea", "bea", "closed", "refund issued"),
        ("rated", "customer", "", "", "5"),
    ]
    entries = await audit.history(redis, "c")
    assert [e.ts for e in entries] == [T0 + i * MIN for i in (0, 1, 2, 3, 4, 5, 6, 9, 10)]
    assert all(e.reasons == ("upset",) for e in entries[:-1])
    assert entries[2].detail == "it is about an invoice"
    live = []
    while (msg := await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)) is not None:
        live.append(json.loads(msg["data"]))
    await pubsub.aclose()
    assert [m["event"] for m in live] == [e[0] for e in got[:-1]]
    assert live[0] == {
        "event": "queued",
        "conv": "c",
        "state": "queued",
        "actor": "bot",
        "from": "bot",
        "to": "orders:1",
        "agent": "",
        "department": "orders",
        "tier": 1,
        "priority": "high",
        "ts": T0,
    }


async def test_append_checks_events_and_ratings(redis: aioredis.Redis) -> None:
    with pytest.raises(ValueError):
        await audit.append(redis, "c", "exploded")
    with pytest.raises(ValueError):
        await audit.record_rating(redis, "c", 6)
    entry_id = await audit.append(
        redis, "c", "sla_breach", reasons=["upset", "sla_breach"], detail="x" * 900, now=T0
    )
    [entry] = await audit.read(redis)
    assert entry.id == entry_id and entry.reasons == ("upset", "sla_breach") and len(entry.detail) == 500


async def test_read_pages_from_a_stream_id(redis: aioredis.Redis) -> None:
    ids = [await audit.append(redis, f"c{i}", "rated", outcome="4", now=T0 + i) for i in range(5)]
    page = await audit.read(redis, start=ids[2], count=2)
    assert [e.conversation_id for e in page] == ["c2", "c3"]
