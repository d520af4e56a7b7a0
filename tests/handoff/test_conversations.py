import asyncio
import json

import pytest
import redis.asyncio as aioredis

from handoff import keys
from handoff.conversations import Conversations, Turn, entry_fields, now_ms


@pytest.fixture
def convs(redis: aioredis.Redis) -> Conversations:
    return Conversations(redis)


def customer(text: str, client_id: str = "") -> list[str]:
    return entry_fields("customer", text, ts=now_ms(), client_id=client_id)


async def test_keys_share_the_conversation_hash_tag() -> None:
    assert keys.conv("abc") == "conv:{abc}" and keys.conv_log("abc") == "conv:{abc}:log"
    assert keys.conv_seen("abc").startswith("conv:{abc}")
    assert keys.customer("web:s") == "ckey:{web:s}" and keys.customer_last("web:s").startswith("ckey:{web:s}")


async def test_open_creates_one_conversation_per_key_even_when_racing(convs: Conversations) -> None:
    results = await asyncio.gather(*(convs.open("web:s", "web", "es") for _ in range(8)))
    assert len({cid for cid, _ in results}) == 1 and sum(created for _, created in results) == 1
    conv = await convs.get(results[0][0])
    assert conv is not None and conv.state == "bot" and conv.lang == "es" and conv.key == "web:s"
    assert await convs.open("web:s", "web", "en") == (conv.id, False)
    assert (await convs.open("telegram:1", "telegram", "en"))[0] != conv.id


async def test_append_deduplicates_on_client_id_atomically(convs: Conversations) -> None:
    cid, _ = await convs.open("web:s", "web", "en")
    same = [convs.append(cid, customer("hi", "m1"), client_id="m1", sender="customer") for _ in range(5)]
    results = await asyncio.gather(*same)
    assert sorted(r.status for r in results) == ["new", "unhandled", "unhandled", "unhandled", "unhandled"]
    assert len({r.message_id for r in results}) == 1
    assert await convs.claim(cid, results[0].message_id) is True
    assert await convs.claim(cid, results[0].message_id) is False
    again = await convs.append(cid, customer("hi", "m1"), client_id="m1", sender="customer")
    assert again.status == "dup" and again.message_id == results[0].message_id
    log = await convs.log(cid)
    assert [(e.sender, e.text, e.client_id) for e in log] == [("customer", "hi", "m1")]
    conv = await convs.get(cid)
    assert conv is not None and conv.customer_messages == 1


async def test_closed_conversation_refuses_appends_and_the_key_gets_a_new_one(convs: Conversations) -> None:
    cid, _ = await convs.open("web:s", "web", "en")
    await convs.append(cid, customer("hello"), sender="customer")
    conv = await convs.get(cid)
    assert conv is not None
    bye = entry_fields("bot", "bye!", ts=now_ms())
    closing_id = await convs.close(conv, "customer", message=bye)
    assert closing_id and (await convs.log(cid))[-1].text == "bye!"
    assert await convs.close(conv, "customer") is None  # already closed
    assert (await convs.append(cid, customer("late"), sender="customer")).status == "closed"
    assert await convs.current_id("web:s") is None and await convs.last_id("web:s") == cid
    new, created = await convs.open("web:s", "web", "en")
    assert created and new != cid and await convs.last_id("web:s") == new


async def test_close_when_idle_respects_later_activity_and_state(convs: Conversations) -> None:
    cid, _ = await convs.open("web:s", "web", "en")
    conv = await convs.get(cid)
    assert conv is not None
    assert await convs.close(conv, "idle", idle_before=conv.updated - 1) is None
    await convs.set_state(cid, "queued")
    assert await convs.close(conv, "idle", idle_before=now_ms() + 1000, only_state="bot") is None
    await convs.set_state(cid, "bot")
    assert await convs.close(conv, "idle", idle_before=now_ms() + 1000, only_state="bot") == ""
    with pytest.raises(ValueError, match="illegal"):
        await convs.set_state(cid, "closed")


async def test_stream_fields_round_trip(convs: Conversations) -> None:
    from bot.messages import Attachment, Button

    cid, _ = await convs.open("web:s", "web", "en")
    fields = entry_fields("bot", "¿Te refieres a…?", ts=5, lang="es", buttons=[Button("Envío", "faq:x")],
                          attachments=[Attachment("photo", "rota", "f1")],
                          decision={"action": "clarify", "candidates": [{"entry_id": "x", "score": 0.4}]})
    await convs.append(cid, fields)
    (entry,) = await convs.log(cid)
    assert entry.text == "¿Te refieres a…?" and entry.buttons == (Button("Envío", "faq:x"),)
    assert entry.attachments == (Attachment("photo", "rota", "f1"),) and entry.ts == 5
    assert entry.decision == {"action": "clarify", "candidates": [{"entry_id": "x", "score": 0.4}]}
    assert await convs.entry(cid, entry.id) == entry


async def test_begin_turn_claims_once_and_reads_the_record_with_the_earlier_words(
    convs: Conversations,
) -> None:
    cid, _ = await convs.open("web:s", "web", "es")
    for text in ("uno", "dos"):
        await convs.append(cid, customer(text), sender="customer")
        await convs.append(cid, entry_fields("bot", f"re: {text}", ts=now_ms()))
    await convs.append(cid, entry_fields("customer", "Envío", ts=now_ms(), kind="choose"), sender="customer")
    current = await convs.append(cid, customer("tres"), sender="customer")
    later = await convs.append(cid, customer("cuatro"), sender="customer")
    turn = await convs.begin_turn(cid, current.message_id, search=20)
    assert turn is not None and turn.conversation is not None
    assert turn.conversation.id == cid and turn.conversation.customer_messages == 5
    # Before this message only, customer words only (not button choices), oldest first.
    assert turn.earlier == ("uno", "dos")
    assert await convs.begin_turn(cid, current.message_id, search=20) is None
    # Without a search, the record alone.
    assert await convs.begin_turn(cid, later.message_id) == Turn(await convs.get(cid), ())
    short = await convs.append(cid, customer("cinco"), sender="customer")
    limited = await convs.begin_turn(cid, short.message_id, search=2)
    assert limited is not None and limited.earlier == ("tres", "cuatro")  # two entries back


async def test_begin_turn_on_a_vanished_record(convs: Conversations, redis: aioredis.Redis) -> None:
    cid, _ = await convs.open("web:s", "web", "es")
    appended = await convs.append(cid, customer("hola"), sender="customer")
    await redis.delete(keys.conv(cid))
    assert await convs.begin_turn(cid, appended.message_id, search=20) == Turn(None)


async def test_append_sets_changes_and_announces_only_what_it_stores(
    convs: Conversations, redis: aioredis.Redis
) -> None:
    cid, _ = await convs.open("web:s", "web", "es")
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe("test:out")
    try:
        tail = json.dumps({"text": "¿Algo más?", "n": [1]}, ensure_ascii=False)[1:]
        stored = await convs.append(cid, entry_fields("bot", "¿Algo más?", ts=now_ms()),
                                    changes={"awaiting": "helpful", "misunderstandings": 0},
                                    announce=("test:out", tail))
        conv = await convs.get(cid)
        assert stored.status == "new" and conv is not None and conv.awaiting == "helpful"
        message = None
        for _ in range(100):  # the subscription's own confirmation comes first
            message = message or await pubsub.get_message(timeout=0.1)
        assert message is not None
        assert json.loads(message["data"]) == {"id": stored.message_id, "text": "¿Algo más?", "n": [1]}
        assert message["data"].startswith('{"id":')

        await convs.close(conv, "customer")
        refused = await convs.append(cid, entry_fields("bot", "late", ts=now_ms()),
                                     changes={"awaiting": "clarify"}, announce=("test:out", tail))
        assert refused.status == "closed"
        assert (await convs.get(cid)).awaiting == "helpful"  # type: ignore[union-attr]
        assert await pubsub.get_message(timeout=0.2) is None
    finally:
        await pubsub.aclose()


async def test_the_open_id_hint_is_dropped_when_the_conversation_closes(convs: Conversations) -> None:
    cid, _ = await convs.open("web:s", "web", "en")
    assert convs.known_open("web:s") == cid
    other = Conversations(convs.redis)  # another worker
    conv = await other.get(cid)
    assert conv is not None and other.known_open("web:s") is None
    await other.close(conv, "customer")
    # This worker's hint is stale now: an append says so, and the key opens a new conversation.
    assert convs.known_open("web:s") == cid
    assert (await convs.append(cid, customer("hi"), sender="customer")).status == "closed"
    convs.forget_open("web:s")
    new, created = await convs.open("web:s", "web", "en")
    assert created and new != cid and convs.known_open("web:s") == new
    await convs.close(await convs.get(new), "customer")  # type: ignore[arg-type]
    assert convs.known_open("web:s") is None


async def test_concurrent_script_calls_share_round_trips_and_each_gets_its_own_reply(
    convs: Conversations, redis: aioredis.Redis
) -> None:
    cids = [(await convs.open(f"web:{i}", "web", "en"))[0] for i in range(20)]
    calls = [convs.append(cid, customer(f"hi {n}", f"m{n}"), client_id=f"m{n}", sender="customer")
             for cid in cids for n in range(3)]
    results = await asyncio.gather(*calls)
    assert [r.status for r in results] == ["new"] * 60
    # Stream ids are per transcript: three distinct ones in each.
    assert all(len({r.message_id for r in results[i : i + 3]}) == 3 for i in range(0, 60, 3))
    for cid in cids:
        assert [e.text for e in await convs.log(cid)] == ["hi 0", "hi 1", "hi 2"]
    turns = await asyncio.gather(*(convs.begin_turn(cid, r.message_id, 5) for cid, r in zip(
        [c for c in cids for _ in range(3)], results, strict=True)))
    assert all(t is not None and t.conversation is not None for t in turns)
    assert [t.earlier for t in turns[:3] if t] == [(), ("hi 0",), ("hi 0", "hi 1")]


async def test_a_script_call_after_redis_forgot_its_scripts_loads_them_again(
    convs: Conversations, redis: aioredis.Redis
) -> None:
    cid, _ = await convs.open("web:s", "web", "en")
    assert (await convs.append(cid, customer("one"), sender="customer")).status == "new"
    await redis.script_flush()
    assert (await convs.append(cid, customer("two"), sender="customer")).status == "new"
    assert [e.text for e in await convs.log(cid)] == ["one", "two"]


async def test_an_error_in_one_batched_call_fails_only_that_call(convs: Conversations, redis: aioredis.Redis) -> None:
    good, _ = await convs.open("web:good", "web", "en")
    await redis.set(keys.conv("broken"), "not a hash")  # the script's HGET fails with WRONGTYPE
    results = await asyncio.gather(
        convs.append(good, customer("a"), sender="customer"),
        convs.append("broken", customer("b"), sender="customer"),
        convs.append(good, customer("c"), sender="customer"),
        return_exceptions=True,
    )
    assert isinstance(results[1], aioredis.ResponseError)
    assert [getattr(r, "status", None) for r in (results[0], results[2])] == ["new", "new"]
    assert [e.text for e in await convs.log(good)] == ["a", "c"]


async def test_a_lost_connection_fails_the_calls_in_flight_and_the_next_calls_reconnect(
    convs: Conversations, redis: aioredis.Redis
) -> None:
    cid, _ = await convs.open("web:s", "web", "en")
    await convs.append(cid, customer("before"), sender="customer")
    await redis.client_kill_filter(_type="normal", skipme=True)  # drops the pooled connections
    await asyncio.gather(*(convs.append(cid, customer(f"after {i}"), sender="customer") for i in range(3)),
                         return_exceptions=True)
    assert (await convs.append(cid, customer("later"), sender="customer")).status == "new"
    assert [e.text for e in await convs.log(cid)][-1] == "later"
