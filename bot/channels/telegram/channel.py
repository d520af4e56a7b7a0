"""The TelegramChannel: feeds updates to the engine and delivers its events to Telegram chats."""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, Protocol, TypeVar, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from telegram import Bot, CallbackQuery, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut

from bot.channels.telegram.delivery import (
    DISOWN_LUA,
    HELD_PER_CHAT,
    MARK_TTL_S,
    NEXT_LUA,
    OWN_LUA,
    OWNED_BY_OTHER,
    PARK_LUA,
    RETRY_LUA,
    TAKE_LUA,
    TAKEN_OVER,
    TAKEOVER_SLACK_S,
    Deferred,
    Progress,
    Retries,
    done_with,
    event_mark,
    parked_item,
    retry_after_s,
)
from bot.channels.telegram.inbound import Translated, chat_of, conversation_key, translate
from bot.channels.telegram.render import chunks, keyboard, message_text, states_position, status_text
from bot.channels.telegram.texts import say
from bot.messages import Inbound, Outbound, OutEvent, StatusUpdate, Stored, event_from_json
from bot.settings import Settings
from handoff import keys
from handoff.conversations import now_ms
from handoff.keys import TELEGRAM_PENDING as PENDING
from handoff.keys import delivery_mark, delivery_owner, status_message, update_seen
from handoff.keys import telegram_parked as parked_key
from handoff.keys import telegram_shown as shown_key
from handoff.outage import REDIS as REDIS_OUTAGE

# One logger for the whole channel, named as before the split: bot.telegram_setup.TOKEN_LOGGERS names it
# (the bot token is redacted in its records), and operators' logging configuration may too.
logger = logging.getLogger("bot.channels.telegram")

# Field on the conversation hash (keys.conv): when the customer blocked the bot (ms); cleared when they write.
UNREACHABLE_FIELD = "unreachable"
UPDATE_SEEN_TTL_S = 2 * 24 * 3600  # Telegram keeps an undelivered update for 24 hours
STATUS_TTL_S = 7 * 24 * 3600
# A notice giving the place the status message shows is folded into it only this soon after it was posted
# (the two would read as the same news twice); later, a notice is news and gets a message of its own.
FOLD_INTO_STATUS_S = 10.0

T = TypeVar("T")


class ConversationEngine(Protocol):
    """What this channel needs of bot.engine.Engine."""

    async def receive(self, inbound: Inbound) -> Stored: ...
    async def process(self, stored: Stored) -> None: ...
    async def language(self, conversation_key: str) -> str | None: ...


def _json(raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class TelegramChannel:
    """Feeds updates to the engine and delivers its events to Telegram chats, one chat in order."""

    def __init__(self, bot: Bot, engine: ConversationEngine, redis: aioredis.Redis, settings: Settings,
                 retries: Retries | None = None, worker: str = "") -> None:
        self.bot = bot
        self.worker = worker or uuid.uuid4().hex
        self.engine = engine
        self.redis = redis
        self.settings = settings
        self.retries = retries or Retries()
        self._locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()
        self._tasks: set[asyncio.Task[None]] = set()
        self.closing = False  # set at shutdown: the loops end even if a cancellation gets lost
        self._park_script = redis.register_script(PARK_LUA)
        self._take = redis.register_script(TAKE_LUA)
        self._next = redis.register_script(NEXT_LUA)
        self._retry = redis.register_script(RETRY_LUA)
        self._own_script = redis.register_script(OWN_LUA)
        self._disown = redis.register_script(DISOWN_LUA)
        self._owned: dict[int, float] = {}  # chat id -> when this worker's lease on it ends (monotonic)
        self._forget_at = 0.0  # when to drop the leases that ended from `_owned`
        self._busy: collections.Counter[int] = collections.Counter()  # chat id -> deliveries under way
        # Other workers' chats: their recent events, and when to look whether that worker is done with them.
        self._held: dict[int, collections.deque[OutEvent]] = {}
        self._checks: dict[int, asyncio.TimerHandle] = {}

    # -- in ------------------------------------------------------------------------------------------

    async def on_update(self, update: Update) -> None:
        """Translate and hand to the engine; raises if the message could not be stored (redeliver it)."""
        if not await self.redis.set(update_seen(update.update_id), 1, nx=True, ex=UPDATE_SEEN_TTL_S):
            logger.debug("telegram: update %s seen before", update.update_id)
            return
        try:
            translated = translate(update, allow_groups=self.settings.telegram.allow_groups,
                                   bot_username=self.bot.username if self._bot_known() else "")
            await self._act(update, translated)
        except BaseException:
            # Not handled: let a redelivery of the same update through.
            await self.redis.delete(update_seen(update.update_id))
            raise

    async def _act(self, update: Update, translated: Translated | None) -> None:
        query = update.callback_query
        try:
            if translated is None:
                return
            if translated.help_chat is not None:
                await self._help(translated.help_chat, translated.lang, translated.unknown_command)
                return
            if translated.inbound is not None:
                stored = await self.engine.receive(translated.inbound)
                if query is not None:
                    await self._answer(query)
                    query = None
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.hdel(keys.conv(stored.conversation_id), UNREACHABLE_FIELD)
                    if update.callback_query is None:
                        # Their message is now the chat's last: a notice after it ("You are still in the
                        # queue…") is an answer, sent below it, not an edit of the status message above.
                        pipe.hdel(shown_key(stored.conversation_id), "last")
                    await pipe.execute()
                await self.engine.process(stored)
        finally:
            if query is not None:
                await self._answer(query)

    async def _help(self, chat_id: int, lang: str | None, unknown: bool = False) -> None:
        # In the conversation's language, as every other reply; the app's only before there is one.
        lang = await self.engine.language(conversation_key(chat_id)) or lang or self.settings.conversation.default_lang
        text = say("help", lang, business=self.settings.business_name)
        if unknown:
            text = say("unknown_command", lang) + "\n\n" + text
        try:
            await self._call(lambda: self.bot.send_message(chat_id, text))
        except (TelegramError, Deferred) as exc:
            logger.warning("telegram: could not send /help to chat %s: %s", chat_id, exc)

    async def _answer(self, query: CallbackQuery) -> None:
        try:
            await query.answer()
        except TelegramError as exc:
            logger.info("telegram: could not answer a button press: %s", exc)

    def _bot_known(self) -> bool:
        try:
            return bool(self.bot.username)
        except RuntimeError:  # before Bot.initialize
            return False

    # -- out -----------------------------------------------------------------------------------------

    async def pump(self, listen: Callable[[], AsyncIterator[OutEvent]]) -> None:
        """Deliver every Telegram event any worker emits, each chat's by one worker at a time; until cancelled."""
        while not self.closing:
            try:
                async for event in listen():
                    if event.channel == "telegram":
                        await self._route(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not REDIS_OUTAGE.failed("telegram outbox subscription", exc):
                    logger.exception("telegram: outbox subscription failed; subscribing again")
                await asyncio.sleep(1.0)

    async def run_pending(self) -> None:
        """Try parked messages again when they are due; every worker runs this, each chat goes to one."""
        while not self.closing:
            try:
                await self.pending_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not REDIS_OUTAGE.failed("telegram parked messages", exc):
                    logger.exception("telegram: retrying parked messages failed")
            await asyncio.sleep(self.retries.pending_poll_s)

    async def pending_once(self) -> int:
        """Start delivering what is due: each due chat's parked messages, in order, by one worker."""
        due = cast(list[str], await self.redis.zrangebyscore(PENDING, "-inf", now_ms(), start=0, num=50))
        taken = 0
        for member in due:
            if member.startswith("{"):
                taken += await self._take_single(member)
            elif await self._take(keys=[PENDING], args=[member, now_ms(), self._lease_end()]):
                self._spawn(self._drain(int(member)), "telegram parked delivery")
                taken += 1
        return taken

    async def _take_single(self, member: str) -> int:
        # One message parked before chats kept their parked messages in order (an upgrade): sent as new.
        if not await self.redis.zrem(PENDING, member):
            return 0
        item = json.loads(member)
        self.deliver_soon(event_from_json(item["event"]), int(item["tries"]))
        return 1

    def deliver_soon(self, event: OutEvent, tries: int = 0) -> None:
        self._spawn(self.deliver(event, tries), "telegram delivery")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:  # the store away: parked items stay
            logger.error("telegram: %s stopped", task.get_name(), exc_info=task.exception())

    async def drain(self, timeout_s: float) -> None:
        """Let deliveries under way finish (a shutdown), then cancel what is left."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
            for task in pending:
                task.cancel()

    async def _route(self, event: OutEvent) -> None:
        """Deliver the event if this worker delivers its chat, else hold it until the worker that does is
        done with it. Every worker hears every event, in the same order; one at a time delivers a chat's
        events, so they reach the chat in that order (two workers sending an agent's quick replies side by
        side could swap them)."""
        chat_id = chat_of(event.conversation_key)
        if chat_id is None:
            self.deliver_soon(event)  # not a chat: `deliver` says so, once per worker
            return
        verdict, detail = await self._own(chat_id)
        if verdict == OWNED_BY_OTHER:
            self._hold(chat_id, event, int(detail))
            return
        if verdict == TAKEN_OVER:
            for missed in self._unsent(chat_id, str(detail)):
                self.deliver_soon(missed)
        self.deliver_soon(event)

    async def _own(self, chat_id: int) -> tuple[int, int | str]:
        """OWN_LUA's verdict on the chat (and its detail); this worker's lease renewed if it is its."""
        lease_ms = int(self.retries.owner_lease_s * 1000)
        verdict, detail = await self._own_script(keys=[delivery_owner(chat_id), delivery_mark(chat_id)],
                                                 args=[self.worker, lease_ms])
        if verdict != OWNED_BY_OTHER:
            now = time.monotonic()
            if now >= self._forget_at:
                self._owned = {chat: end for chat, end in self._owned.items() if end > now}
                self._forget_at = now + self.retries.owner_lease_s
            self._owned[chat_id] = now + self.retries.owner_lease_s
        return int(verdict), detail

    def _hold(self, chat_id: int, event: OutEvent, lease_left_ms: int) -> None:
        """Keep another worker's event until it is done with it: should that worker die, this one sends it."""
        held = self._held.get(chat_id)
        if held is None:
            held = self._held[chat_id] = collections.deque(maxlen=HELD_PER_CHAT)
        held.append(event)
        self._hold_check(chat_id, lease_left_ms)

    def _check_soon(self, chat_id: int) -> None:
        del self._checks[chat_id]
        self._spawn(self._check(chat_id), "telegram delivery check")

    async def _check(self, chat_id: int) -> None:
        """Once the other worker's lease could have run out: forget what it sent; if some is left and the
        worker is gone, take the chat over and send the rest."""
        try:
            mark = cast(str | None, await self.redis.get(delivery_mark(chat_id)))
            held = self._held.get(chat_id)
            if held is None or self.closing:
                return
            for _ in range(done_with(list(held), mark or "")):
                held.popleft()
            if not held:
                del self._held[chat_id]
                return
            verdict, detail = await self._own(chat_id)
        except RedisError as exc:
            logger.warning("telegram: could not look whether chat %s is still delivered: %s", chat_id, exc)
            self._hold_check(chat_id, int(self.retries.owner_lease_s * 1000))
            return
        if verdict == OWNED_BY_OTHER:  # alive and still sending (or held up): look again later
            self._hold_check(chat_id, int(detail))
            return
        missed = self._unsent(chat_id, str(detail))
        if missed:
            logger.warning("telegram: took chat %s over from a worker that stopped answering; sending the %d "
                           "message(s) it had not sent", chat_id, len(missed))
        for event in missed:
            self.deliver_soon(event)

    def _hold_check(self, chat_id: int, lease_left_ms: int) -> None:
        if chat_id not in self._checks:
            delay = max(lease_left_ms, 0) / 1000 + TAKEOVER_SLACK_S
            self._checks[chat_id] = asyncio.get_running_loop().call_later(delay, self._check_soon, chat_id)

    def _unsent(self, chat_id: int, mark: str) -> list[OutEvent]:
        """This worker now delivers the chat: the held events the worker before had not sent, oldest first."""
        held = list(self._held.pop(chat_id, ()))
        check = self._checks.pop(chat_id, None)
        if check is not None:
            check.cancel()
        return held[done_with(held, mark):]

    async def keep_leases(self) -> None:
        """Renew the chats this worker is still sending to (a flood wait can outlast a lease), so no other
        worker takes them over meanwhile; until cancelled."""
        while not self.closing:
            await asyncio.sleep(self.retries.owner_lease_s / 3)
            for chat_id in [chat for chat in self._busy if chat in self._owned]:
                try:
                    await self._own(chat_id)
                except RedisError as exc:
                    logger.warning("telegram: could not renew the lease on chat %s: %s", chat_id, exc)

    async def disown(self) -> None:
        """Give up the chats this worker delivers to (a shutdown), so another worker takes them at once."""
        for check in self._checks.values():
            check.cancel()
        self._checks.clear()
        self._held.clear()
        now, owned, self._owned = time.monotonic(), self._owned, {}
        for chat_id in [chat for chat, end in owned.items() if end > now]:
            await self._disown(keys=[delivery_owner(chat_id)], args=[self.worker])

    async def deliver(self, event: OutEvent, tries: int = 0) -> None:
        """Send one event to its chat, or park it behind the chat's parked ones; never raises: failures
        are parked, blocked chats marked."""
        chat_id = chat_of(event.conversation_key)
        if chat_id is None:
            logger.warning("telegram: event for %r is not a Telegram chat", event.conversation_key)
            return
        self._busy[chat_id] += 1
        try:
            async with self._lock(chat_id):
                behind = parked_item(event, tries, 0)
                if await self._park_script(keys=[PENDING, parked_key(chat_id)],
                                           args=[chat_id, behind, now_ms(), 1]):
                    logger.info("telegram: a message for chat %s waits behind the chat's parked ones", chat_id)
                else:
                    progress = Progress()
                    delay = await self._send(chat_id, event, progress)
                    if delay is not None:
                        await self._park(chat_id, event, tries + 1, progress.parts, delay)
                # Done with it (sent, refused, or parked for the retries): a worker taking over starts after it.
                await self.redis.set(delivery_mark(chat_id), event_mark(event), ex=MARK_TTL_S)
        finally:
            self._busy[chat_id] -= 1
            if not self._busy[chat_id]:
                del self._busy[chat_id]

    async def _drain(self, chat_id: int) -> None:
        """The chat's parked messages, oldest first, until one fails again (it stays first) or none is left."""
        parked = parked_key(chat_id)
        async with self._lock(chat_id):
            while True:
                raw = cast(str | None, await self.redis.lindex(parked, 0))
                if raw is not None and not await self._send_parked(chat_id, raw):
                    return
                if not await self._next(keys=[PENDING, parked], args=[chat_id, self._lease_end()]):
                    return

    async def _send_parked(self, chat_id: int, raw: str) -> bool:
        """False if the message is parked again; True when it is done with (sent, refused or given up)."""
        item = json.loads(raw)
        event, tries = event_from_json(item["event"]), int(item["tries"]) + 1
        progress = Progress(int(item.get("parts", 0)))
        delay = await self._send(chat_id, event, progress)
        if delay is None:
            return True
        if tries > self.retries.max_parks:
            logger.error("telegram: gave up on a message for chat %s after %d tries (it stays in the "
                         "transcript); the chat's next messages go on", chat_id, tries)
            return True
        again = parked_item(event, tries, progress.parts)
        await self._retry(keys=[PENDING, parked_key(chat_id)], args=[chat_id, again, now_ms() + int(delay * 1000)])
        logger.warning("telegram: message for chat %s kept for a retry in %.0f s (try %d)", chat_id, delay, tries)
        return False

    async def _send(self, chat_id: int, event: OutEvent, progress: Progress) -> float | None:
        """Send it; None when done with it (sent, or refused for good), else seconds to wait before again."""
        try:
            if isinstance(event, Outbound):
                await self._send_outbound(chat_id, event, progress)
            else:
                await self._send_status(chat_id, event)
        except Forbidden as exc:
            logger.warning("telegram: chat %s cannot be reached (%s); marked unreachable", chat_id, exc)
            await self.redis.hset(keys.conv(event.conversation_id), UNREACHABLE_FIELD, now_ms())
        except BadRequest as exc:
            logger.error("telegram: Telegram refused a message for chat %s: %s", chat_id, exc)
        except Deferred as exc:
            return exc.delay_s
        except TelegramError as exc:
            logger.warning("telegram: sending to chat %s failed: %s", chat_id, exc)
            return self.retries.park_s
        return None

    async def _send_outbound(self, chat_id: int, event: Outbound, progress: Progress) -> None:
        parts = chunks(message_text(event))
        markup = keyboard(event.buttons)
        notice = event.sender == "system" and markup is None and len(parts) == 1
        if notice and progress.parts == 0 and await self._into_status_message(chat_id, event):
            progress.parts = 1
            return
        # A retry starts where the last try stopped: the parts Telegram took are in the chat already.
        for i in range(progress.parts, len(parts)):
            await self._send_text(chat_id, parts[i], markup if i == len(parts) - 1 else None)
            progress.parts = i + 1
        shown = shown_key(event.conversation_id)
        try:
            if notice:
                await self._remember(shown, last=json.dumps({"kind": "notice", "text": event.text}))
            else:
                await self.redis.hdel(shown, "last")
        except RedisError as exc:  # sent: at worst a status message repeats a place; never send it again
            logger.warning("telegram: could not note what chat %s was sent: %s", chat_id, exc)

    async def _into_status_message(self, chat_id: int, event: Outbound) -> bool:
        """A notice that gives the place the status message just below it shows ("You are number 1 in the
        queue; estimated wait…" right after "You're number 1 in the queue…"): the status message becomes
        the notice, instead of a second message saying the same. True if it did."""
        shown = shown_key(event.conversation_id)
        last = _json(cast(str | None, await self.redis.hget(shown, "last")))
        if last.get("kind") != "status" or not states_position(event.text, last.get("position")):
            return False
        if time.time() - float(last.get("at") or 0) > FOLD_INTO_STATUS_S:
            # Posted a while ago: a notice now (an apology, a new wait) is news, and Telegram announces a
            # new message but not an edit of one the customer scrolled past.
            return False
        known = cast(str | None, await self.redis.get(status_message(event.conversation_id)))
        if known is None or int(known) != last.get("id") or not await self._edit(chat_id, int(known), event.text):
            return False
        # A later place or wait gets a status message of its own; the same one again is not repeated.
        await self.redis.delete(status_message(event.conversation_id))
        await self._remember(shown, last=json.dumps({"kind": "notice", "text": event.text}),
                             covered=str(last.get("text", "")))
        return True

    async def _remember(self, shown: str, forget: tuple[str, ...] = (), **fields: str) -> None:
        """Note what the chat was shown (and drop the `forget` fields), in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            mapping: dict[Any, str] = dict(fields)
            pipe.hset(shown, mapping=mapping)
            if forget:
                pipe.hdel(shown, *forget)
            pipe.expire(shown, STATUS_TTL_S)
            await pipe.execute()

    async def _send_text(self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None) -> Message:
        return await self._call(lambda: self.bot.send_message(chat_id, text, reply_markup=markup))

    async def _send_status(self, chat_id: int, status: StatusUpdate) -> None:
        key = status_message(status.conversation_id)
        lang = cast(str | None, await self.redis.hget(keys.conv(status.conversation_id), "lang")) or "en"
        text = status_text(status, lang)
        known = cast(str | None, await self.redis.get(key))
        shown = shown_key(status.conversation_id)
        if text is None:
            # The message stays in the chat: left as it was, it would still show a place in the queue.
            if known and await self._edit(chat_id, int(known), say("left_queue", lang)):
                logger.debug("telegram: status message %s of chat %s closed", known, chat_id)
            await self.redis.delete(key, shown)  # the next queue gets a fresh status message
            return
        seen = cast(dict[str, str], await self.redis.hgetall(shown))
        last = _json(seen.get("last"))
        if known and await self._edit(chat_id, int(known), text):
            if last.get("kind") == "status" and last.get("id") == int(known):
                await self._remember(shown, last=json.dumps({**last, "position": status.position, "text": text}))
            return
        if not known:
            # The handoff's notice ("A person from our team will take over… You are number 1 in the queue;
            # estimated wait…") comes just before its first status: a status message saying it again
            # would be the same news twice in a row. It is posted when the place or the wait changes.
            if seen.get("covered") == text:
                return
            if last.get("kind") == "notice" and states_position(str(last.get("text", "")), status.position):
                await self._remember(shown, covered=text)
                return
        sent = await self._send_text(chat_id, text, None)
        await self.redis.set(key, sent.message_id, ex=STATUS_TTL_S)
        mine = {"kind": "status", "id": sent.message_id, "position": status.position, "text": text, "at": time.time()}
        await self._remember(shown, forget=("covered",), last=json.dumps(mine))

    async def _edit(self, chat_id: int, message_id: int, text: str) -> bool:
        """Edit a status message in place; False if it is gone (deleted by the customer, too old)."""
        try:
            await self._call(lambda: self.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id))
        except BadRequest as exc:
            if "not modified" in str(exc).lower():
                return True
            logger.info("telegram: status message %s of chat %s gone (%s)", message_id, chat_id, exc)
            return False
        return True

    async def _call(self, make: Callable[[], Awaitable[T]]) -> T:
        """One Bot API call: wait out flood limits and retry network failures, within bounds."""
        floods = failures = 0
        while True:
            try:
                return await make()
            except RetryAfter as exc:
                floods += 1
                wait = retry_after_s(exc)
                if floods > self.retries.flood_attempts or wait > self.retries.max_flood_wait_s:
                    raise Deferred(max(wait, self.retries.park_s)) from exc
                logger.warning("telegram: flood limit, waiting %.0f s before sending again", wait)
                await asyncio.sleep(wait)
            except BadRequest:
                raise  # a NetworkError subclass, but sending it again will not help
            except (TimedOut, NetworkError) as exc:
                failures += 1
                if failures > self.retries.network_attempts:
                    raise Deferred(self.retries.park_s) from exc
                logger.warning("telegram: %s; trying again", exc)
                await asyncio.sleep(self.retries.backoff_s * 2 ** (failures - 1))

    async def _park(self, chat_id: int, event: OutEvent, tries: int, parts: int, delay_s: float) -> None:
        if tries > self.retries.max_parks:
            logger.error("telegram: gave up on a message for %s after %d tries (it stays in the transcript)",
                         event.conversation_key, tries)
            return
        item = parked_item(event, tries, parts)
        await self._park_script(keys=[PENDING, parked_key(chat_id)],
                                args=[chat_id, item, now_ms() + int(delay_s * 1000), 0])
        logger.warning("telegram: message for %s kept for a retry in %.0f s (try %d)",
                       event.conversation_key, delay_s, tries)

    def _lease_end(self) -> int:
        return now_ms() + int(self.retries.drain_lease_s * 1000)

    def _lock(self, chat_id: int) -> asyncio.Lock:
        # asyncio.Lock wakes waiters in order, so a chat's messages leave in the order they were emitted.
        lock = self._locks.get(chat_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[chat_id] = lock
        return lock
