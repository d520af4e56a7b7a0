from pathlib import Path

import redis.asyncio as aioredis

from bot.idle import IdleSweeper
from bot.messages import Outbound, StatusUpdate
from handoff.conversations import now_ms
from tests.bot.test_engine import Bot, build, kb_dir, make_settings

__all__ = ["kb_dir"]  # the fixture, shared with the engine tests

MINUTE = 60_000


def sweeper(bot: Bot, redis: aioredis.Redis, minutes: float = 30.0) -> IdleSweeper:
    return IdleSweeper(redis, bot.conversations, bot.engine, minutes)


async def test_idle_conversation_is_closed_with_a_closing_message(
    redis: aioredis.Redis, kb_dir: Path
) -> None:
    bot = build(redis, make_settings(kb_dir))
    await bot.say("¿Cuánto tarda el envío?", key="web:idle")
    await bot.say("How long does shipping take?", key="web:busy")
    idle = await bot.conv("web:idle")
    sweep = sweeper(bot, redis)
    assert await sweep.sweep_once(now=now_ms() + 10 * MINUTE) == 0
    bot.events.clear()
    assert await sweep.sweep_once(now=now_ms() + 31 * MINUTE) == 2
    closing = [e for e in bot.events if isinstance(e, Outbound) and e.conversation_key == "web:idle"]
    assert len(closing) == 1 and closing[0].lang == "es" and "cierro esta conversación" in closing[0].text
    assert closing[0].sender == "system"
    assert [e.state for e in bot.events if isinstance(e, StatusUpdate)] == ["closed", "closed"]
    assert (await bot.conversations.get(idle.id)).state == "closed"  # type: ignore[union-attr]
    assert (await bot.engine.history("web:idle"))[-1].id == closing[0].id
    assert await sweep.sweep_once(now=now_ms() + 60 * MINUTE) == 0


async def test_conversations_with_a_person_or_without_words_are_left_alone(
    redis: aioredis.Redis, kb_dir: Path
) -> None:
    bot = build(redis, make_settings(kb_dir))
    await bot.say("quiero hablar con un agente", key="web:queued")
    await bot.engine.open("web:silent", "web", "en")
    bot.events.clear()
    assert await sweeper(bot, redis).sweep_once(now=now_ms() + 120 * MINUTE) == 1
    assert (await bot.conv("web:queued")).state == "queued"
    # The one that never wrote is closed without a message to nobody.
    assert [type(e).__name__ for e in bot.events] == ["StatusUpdate"]


async def test_a_conversation_the_customer_never_wrote_in_leaves_nothing_in_redis_once_closed(
    redis: aioredis.Redis, kb_dir: Path
) -> None:
    """Every opened widget starts a conversation (the greeting); closed idle, one nobody wrote in goes."""
    bot = build(redis, make_settings(kb_dir))
    await bot.say("How long does shipping take?", key="web:back")
    await bot.say("adiós", key="web:back")  # ends it: the next opening starts a new one
    spoken = await bot.conversations.last_id("web:back")
    await bot.engine.open("web:back", "web", "en")
    silent = await bot.conversations.current_id("web:back")
    await bot.engine.open("web:never", "web", "en")
    never = await bot.conversations.current_id("web:never")
    assert silent and never and silent != spoken
    assert await sweeper(bot, redis).sweep_once(now=now_ms() + 120 * MINUTE) == 2
    assert await redis.keys(f"*{silent}*") == [] and await redis.keys(f"*{never}*") == []
    assert await redis.keys("*web:never*") == []
    # The customer who had spoken keeps that conversation as their last one, with its history.
    assert await bot.conversations.last_id("web:back") == spoken
    assert (await bot.engine.history("web:back"))[-1].text.startswith("Thank you for contacting")
    assert (await bot.conversations.get(spoken)).state == "closed"  # type: ignore[arg-type,union-attr]


async def test_only_the_lease_holder_sweeps(redis: aioredis.Redis, kb_dir: Path) -> None:
    bot = build(redis, make_settings(kb_dir))
    await bot.say("hello there", key="web:x")
    first, second = sweeper(bot, redis), sweeper(bot, redis)
    assert await first.hold_lease() and not await second.hold_lease()
    assert await second.sweep_once(now=now_ms() + 120 * MINUTE) == 0
    assert (await bot.conv("web:x")).state == "bot"
    await first.release()
    assert await second.sweep_once(now=now_ms() + 120 * MINUTE) == 1


async def test_a_message_after_the_sweep_read_keeps_the_conversation_open(
    redis: aioredis.Redis, kb_dir: Path
) -> None:
    bot = build(redis, make_settings(kb_dir))
    await bot.say("hello there", key="web:x")
    conv = await bot.conv("web:x")
    cutoff = now_ms() - 1  # the sweep decided on an older view; the customer wrote since
    await bot.say("How long does shipping take?", key="web:x")
    assert await bot.engine.close_idle(conv.id, conv.updated - 1) is False
    assert await bot.engine.close_idle(conv.id, cutoff) is False
    assert (await bot.conv("web:x")).state == "bot"


async def test_a_resolved_conversation_is_watched_again_and_closed_when_idle(
    redis: aioredis.Redis, kb_dir: Path
) -> None:
    bot = build(redis, make_settings(kb_dir))
    await bot.say("quiero hablar con un agente", key="web:resolved")
    conv = await bot.conv("web:resolved")
    sweep = sweeper(bot, redis)
    assert await sweep.sweep_once(now=now_ms() + 120 * MINUTE) == 0  # waiting for a person: left alone
    await bot.conversations.set_state(conv.id, "resolved")
    assert await sweep.sweep_once(now=now_ms() + 10 * MINUTE) == 0
    assert await sweep.sweep_once(now=now_ms() + 31 * MINUTE) == 1
    assert (await bot.conversations.get(conv.id)).state == "closed"  # type: ignore[union-attr]
