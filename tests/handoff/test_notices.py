"""What a handed-off customer is told as the wait goes on and agents act: revised waits and the apology,
one status per change, the SLA-breach notice, "has joined" once per person, transfers, rating prompts."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from bot.channels.telegram import status_text
from bot.messages import StatusUpdate
from handoff import keys
from handoff.estimate import WaitInfo, paced_wait_s
from handoff.keys import told_key, wait_key
from handoff.notify import REFRESH_S, apology_after_s, eta_text, promised_s
from handoff.presence import now_ms
from tests.handoff import test_service
from tests.handoff.queue_helpers import route
from tests.handoff.test_service import (
    Served,
    add_agent,
    ask_for_person,
    claimed_customer,
    conversation_id,
    customer,
    expect,
    frames_for,
    login,
    post,
)

# The shared fixtures (a server with the API mounted, an HTTP client keeping cookies).
server = test_service.server
http = test_service.http

QUIET_S = REFRESH_S + 1.5  # longer than any throttled refresh that could still follow


def statuses(frames: list[dict[str, Any]]) -> list[tuple[str, Any, Any]]:
    return [(f["state"], f.get("position"), f.get("agent")) for f in frames if f["type"] == "status"]


def texts(frames: list[dict[str, Any]]) -> list[str]:
    return [f["text"] for f in frames if f["type"] == "message"]


# -- M2: the wait told grows when the queue does not move, and the apology comes when it runs out --------


def test_the_wait_told_is_never_less_than_the_queues_own_pace() -> None:
    assert paced_wait_s(30, 2, 0, 0) == 30  # just queued: the model's figure
    assert paced_wait_s(30, 2, 0, 90) == 180  # 90 s without moving, 2 places to go: about 3 minutes
    assert paced_wait_s(300, 2, 0, 90) == 300  # the model says more: the model
    assert paced_wait_s(30, 1, 5, 300) == 60  # moved 5 places in 5 minutes: a minute a place
    assert paced_wait_s(30, 3, -2, 60) == 180  # pushed back by urgent arrivals: counted as not moving
    assert paced_wait_s(None, 2, 0, 600) is None  # nobody online: nothing to promise
    # What the text promises, and when that is clearly overrun.
    assert (promised_s(30), promised_s(170), promised_s(3600)) == (60, 180, 3600)
    assert (apology_after_s(30), apology_after_s(120), apology_after_s(600)) == (90, 180, 900)


async def waiting_with_an_idle_agent(
    http: aiohttp.ClientSession, server: Served, at: int
) -> tuple[aiohttp.ClientWebSocketResponse, str]:
    """Ana online with free capacity who does not claim; a customer queued and told "less than a minute"."""
    await add_agent(server, "ana", display_name="Ana")
    await server.service.presence.heartbeat("ana", "online", now=at)
    for seconds in (50, 70):  # a quick desk: half a minute to the first free place
        await server.service.queues._record_handling("general", seconds)
    ws = await customer(http, server)
    await ask_for_person(ws)
    told = await expect(ws, "message", lambda d: "number 1" in d["text"], **{"from": "system"})
    assert "less than a minute" in told["text"]
    await expect(ws, "status", state="queued")
    return ws, await conversation_id(server)


async def test_a_customer_asking_again_hears_a_longer_wait_and_one_apology_once_it_has_run_out(
    server: Served, http: aiohttp.ClientSession
) -> None:
    t0 = now_ms()
    ws, cid = await waiting_with_an_idle_agent(http, server, t0)
    notifier, presence = server.service.notifier, server.service.presence
    told_at = int(await server.runtime.redis.hget(wait_key(cid), "told_at") or 0)
    assert told_at >= t0

    async def ask_at(seconds: int) -> str:
        at = told_at + seconds * 1000
        await presence.heartbeat("ana", "online", now=at)  # still online and free, still not claiming
        assert await notifier.remind(cid, now=at)
        return str((await expect(ws, "message", **{"from": "system"}))["text"])

    assert "estimated wait: less than a minute" in await ask_at(21)  # still within what was promised
    later = await ask_at(63)
    # Number 1 for a minute without moving: as long again. Revised up, not yet clearly late.
    assert "estimated wait: about a minute" in later and not later.startswith("Sorry")
    sorry = await ask_at(95)  # "less than a minute", 95 s ago: clearly overrun
    assert sorry.startswith("Sorry for the wait") and "estimated wait now: about 2 minutes" in sorry, sorry
    again = await ask_at(150)
    # One apology only; 150 s is "about 3 minutes" (halves round up, as the widget's banner rounds them).
    assert again.startswith("You are still in the queue") and "about 3 minutes" in again
    await ws.close()


async def test_the_apology_comes_when_the_first_promise_is_clearly_overrun_even_if_the_estimate_holds(
    server: Served, http: aiohttp.ClientSession
) -> None:
    ws, cid = await waiting_with_an_idle_agent(http, server, now_ms())
    told_at = int(await server.runtime.redis.hget(wait_key(cid), "told_at") or 0)
    notifier = server.service.notifier
    unchanged = WaitInfo(1, 30)  # the model still says "less than a minute"
    assert not await notifier._revise(cid, unchanged, told_at + 80_000)  # a minute promised: not yet 1.5x
    assert await notifier._revise(cid, unchanged, told_at + 91_000)
    assert not await notifier._revise(cid, unchanged, told_at + 300_000)  # once per handoff
    await ws.close()


async def test_a_wait_promised_before_everyone_went_offline_still_gets_its_apology(
    server: Served, http: aiohttp.ClientSession
) -> None:
    # Told "less than a minute", then nobody is online: before, the customer heard nothing more.
    ws, cid = await waiting_with_an_idle_agent(http, server, now_ms())
    redis = server.runtime.redis
    told_at = int(await redis.hget(wait_key(cid), "told_at") or 0)
    at = told_at + 61_000  # ana's heartbeat is older than the presence TTL by now: offline
    assert await server.service.presence.status("ana", now=at) == "offline"
    await server.service.sweeper.sweep_once(now=at)
    revised = await expect(ws, "status", state="queued")
    assert revised["position"] == 1 and revised.get("eta_s") is None
    assert await redis.zscore(keys.WAIT_CHECKS, cid) == told_at + 90_000  # when the promise is clearly overrun
    at = told_at + 91_000
    await server.service.sweeper.sweep_once(now=at)
    sorry = await expect(ws, "message", **{"from": "system"})
    assert sorry["text"] == ("Sorry for the wait: it is taking longer than we expected. You are number 1; "
                             "estimated wait now: as soon as someone is free.")
    assert await redis.zscore(keys.WAIT_CHECKS, cid) is None  # once: nothing more is promised
    await ws.close()


async def test_the_sweep_revises_a_wait_that_ran_out_without_the_customer_asking(
    server: Served, http: aiohttp.ClientSession
) -> None:
    t0 = now_ms()
    ws, cid = await waiting_with_an_idle_agent(http, server, t0)
    redis = server.runtime.redis
    told_at = int(await redis.hget(wait_key(cid), "told_at") or 0)
    due = await redis.zscore(keys.WAIT_CHECKS, cid)
    assert due == told_at + 60_000  # when "less than a minute" runs out
    at = told_at + 61_000
    await server.service.presence.heartbeat("ana", "online", now=at)
    await server.service.sweeper.sweep_once(now=at)
    revised = await expect(ws, "status", state="queued")
    assert revised["position"] == 1 and revised["eta_s"] >= 60
    # Next look: when the apology falls due (90 s after "less than a minute"), before the new wait runs out.
    assert await redis.zscore(keys.WAIT_CHECKS, cid) == told_at + 90_000
    at = told_at + 91_000
    await server.service.presence.heartbeat("ana", "online", now=at)
    await server.service.sweeper.sweep_once(now=at)
    sorry = await expect(ws, "message", **{"from": "system"})
    assert sorry["text"].startswith("Sorry for the wait")
    await expect(ws, "status", lambda d: d["eta_s"] >= 90, state="queued")
    # Once claimed, nothing more is looked at.
    csrf = await login(http, server)
    await post(http, server, "/api/claim", csrf, {"conversation_id": cid})
    await expect(ws, "status", state="assigned")
    assert await redis.zscore(keys.WAIT_CHECKS, cid) is None
    await ws.close()


# -- L1: one status per change ------------------------------------------------------------------------------


async def test_a_claim_sends_one_assigned_status_and_one_joined_notice(
    server: Served, http: aiohttp.ClientSession
) -> None:
    await add_agent(server, "ana", display_name="Ana")
    ws = await customer(http, server)
    await ask_for_person(ws)
    await expect(ws, "status", state="queued")
    csrf = await login(http, server)
    await post(http, server, "/api/claim", csrf)
    seen = await frames_for(ws, QUIET_S)
    assert statuses(seen) == [("assigned", None, "Ana")]
    assert texts(seen) == ["Ana has joined the conversation."]
    await ws.close()


# -- L2: an SLA breach is apologised for, once, with one status -------------------------------------------


async def test_an_sla_breach_tells_the_customer_once_with_one_status(
    server: Served, http: aiohttp.ClientSession
) -> None:
    ws = await customer(http, server, "es")
    await ask_for_person(ws, "quiero hablar con una persona")
    await expect(ws, "status", state="queued")
    cid = await conversation_id(server)
    redis, queues = server.runtime.redis, server.service.queues
    for n in (1, 2):  # two who came earlier, with no deadline of their own yet: only this one breaches
        await queues.enqueue(f"earlier-{n}", route(), now=now_ms() - 60_000 * n)
        await redis.zrem(keys.SLA_REPLY, f"earlier-{n}")
    await expect(ws, "status", state="queued", position=3)
    await frames_for(ws, 0.5)
    # Long after the handoff (the tester waited 40 s): no refresh of this customer is under way any more.
    await redis.delete(told_key(cid, "refresh"))
    late = now_ms() + 601_000  # past the first-reply target of a normal wait (600 s)
    report = await server.service.sweeper.sweep_once(now=late)
    assert report.breached == [cid]
    seen = await frames_for(ws, QUIET_S)
    assert statuses(seen) == [("queued", 1, None)]
    (told,) = texts(seen)
    assert told.startswith("Perdona la larga espera. Hemos adelantado tu conversación") and "puesto 1" in told
    st = await server.service.queues.state(cid)
    assert st is not None and st.tier == 2
    # The next sweeps (no new breach yet) say nothing.
    await server.service.sweeper.sweep_once(now=late + 1000)
    await server.service.sweeper.sweep_once(now=late + 2000)
    assert texts(await frames_for(ws, QUIET_S)) == []
    await ws.close()


# -- L3: "has joined" once per person ---------------------------------------------------------------------


async def test_the_same_agent_claiming_again_after_a_transfer_is_not_announced_again(
    server: Served, http: aiohttp.ClientSession
) -> None:
    ws, cid, csrf = await claimed_customer(http, server)  # Ana works in general and logistics
    await post(http, server, f"/api/conversations/{cid}/transfer", csrf, {"department": "logistics"})
    await expect(ws, "message", lambda d: d["text"].startswith("I'm passing you to"))
    await post(http, server, "/api/claim", csrf, {"conversation_id": cid})
    await expect(ws, "status", agent="Ana", state="assigned")
    # Given back to the queue, the customer hears she left: her coming back is news again.
    await post(http, server, f"/api/conversations/{cid}/release", csrf)
    await expect(ws, "message", lambda d: d["text"].startswith("The person helping you has had to leave"))
    await post(http, server, "/api/claim", csrf, {"conversation_id": cid})
    await expect(ws, "status", agent="Ana", state="assigned")
    await asyncio.sleep(0.3)  # the claim's own event, handled after the claim returned, adds nothing
    log = await server.runtime.conversations.log(cid, 100)
    assert [e.text for e in log if e.text == "Ana has joined the conversation."] == [
        "Ana has joined the conversation.", "Ana has joined the conversation."
    ]
    await ws.close()


@pytest.mark.parametrize("move", ["transfer", "release"])
async def test_handed_on_after_the_first_wait_ran_out_is_a_new_promise_not_an_apology(
    server: Served, http: aiohttp.ClientSession, move: str
) -> None:
    # Told "less than a minute", claimed, helped for minutes (the first wait's overrun passes meanwhile),
    # then transferred or given back: no "sorry for the wait" for the wait that ended when Ana took it.
    ws, cid = await waiting_with_an_idle_agent(http, server, now_ms())
    redis = server.runtime.redis
    await redis.hset(wait_key(cid), "told_at", now_ms() - 300_000)  # told five minutes ago
    csrf = await login(http, server)
    await post(http, server, "/api/claim", csrf, {"conversation_id": cid})
    await expect(ws, "message", lambda d: d["text"] == "Ana has joined the conversation.")
    moved_at = now_ms()
    if move == "transfer":
        await post(http, server, f"/api/conversations/{cid}/transfer", csrf, {"department": "logistics"})
    else:
        await post(http, server, f"/api/conversations/{cid}/release", csrf)
    seen = await frames_for(ws, QUIET_S)
    said = texts(seen)
    assert said and (said[0].startswith("I'm passing you to") or said[0].startswith("The person helping you")), said
    assert not any(t.startswith("Sorry for the wait") for t in said), said
    assert [s[0] for s in statuses(seen)] == ["queued"]
    # The wait told now is the promise its apology counts from.
    assert int(await redis.hget(wait_key(cid), "told_at") or 0) >= moved_at
    assert await redis.hget(wait_key(cid), "apologised_at") is None
    await ws.close()


# -- L4: no transfer to the department it is in ------------------------------------------------------------


async def test_a_transfer_to_the_same_department_is_refused(server: Served, http: aiohttp.ClientSession) -> None:
    ws, cid, csrf = await claimed_customer(http, server)
    async with http.post(
        server.url + f"/api/conversations/{cid}/transfer", json={"department": "general"},
        headers={"X-Relevo-CSRF": csrf},
    ) as r:  # fmt: skip
        assert r.status == 409
        body = await r.json()
    assert body["error"] == "same_department" and "already in the general department" in body["message"]
    st = await server.service.queues.state(cid)
    assert st is not None and (st.state, st.agent, st.queue_name) == ("assigned", "ana", "general:1")
    assert texts(await frames_for(ws, 1.0)) == []  # not told they are passed on
    await ws.close()


# -- L5: no rating asked for spam or a duplicate -----------------------------------------------------------


@pytest.mark.parametrize("outcome", ["spam", "duplicate", "not_solved"])
async def test_the_rating_is_asked_only_for_a_real_conversation(
    server: Served, http: aiohttp.ClientSession, outcome: str
) -> None:
    ws = await customer(http, server)
    await ask_for_person(ws)
    await expect(ws, "status", state="queued")
    cid = await conversation_id(server)
    await server.service.queues.resolve(None, cid, outcome)
    await expect(ws, "status", state="resolved")
    said = texts(await frames_for(ws, 1.0))
    asked = [t for t in said if t.startswith("How did we do?")]
    assert len(asked) == (1 if outcome == "not_solved" else 0), said
    if outcome == "duplicate":
        assert said == ["Our team has closed this conversation: your request is being handled in another "
                        "conversation."]
    if outcome == "spam":
        assert said == []
    awaiting = await server.runtime.redis.hget(keys.conv(cid), "awaiting")
    assert awaiting == ("rating" if outcome == "not_solved" else "")
    await ws.close()


def test_a_wait_reads_the_same_in_the_notice_the_status_message_and_the_widget() -> None:
    # 150 s is "3" everywhere: the widget's Math.round(2.5) is 3, so the server's texts round halves up too.
    half = StatusUpdate("c", "telegram:1", "telegram", "queued", position=1, eta_s=150)
    assert eta_text(150, "es") == "unos 3 minutos"
    assert "unos 3 min" in str(status_text(half, "es"))
    assert promised_s(150) == 180
    assert eta_text(149, "en") == "about 2 minutes"
