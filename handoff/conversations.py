"""Conversation records and their transcripts (Redis streams), keyed by conversation id."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import hiredis
import orjson
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

from bot.messages import RATE_PREFIX, Attachment, Button, State
from handoff import keys

logger = logging.getLogger(__name__)

STATES: tuple[State, ...] = ("bot", "queued", "assigned", "resolved", "closed")
# The transcript kind of what closes a handoff for the customer (the rating question, the thanks for the
# stars or the comment): what they write up to it is about the help they had, not why they come back.
RATING_KIND = "rating"
# States in which a person, not the bot, speaks to the customer.
WITH_A_PERSON: frozenset[str] = frozenset({"queued", "assigned"})

# KEYS[1] conversation hash, KEYS[2] transcript stream, KEYS[3] seen hash
# ARGV[1] client id ('' = no de-duplication), ARGV[2] now (ms), ARGV[3] sender, ARGV[4] pub/sub channel
# to announce the entry on ('' = none), ARGV[5] the announcement: a JSON object without its opening
# brace, to which the script prefixes `{"id":"<stream id>",`; ARGV[6] n = how many (field, value)
# pairs of the conversation hash follow, set together with the entry, ARGV[7 .. 6+2n] those pairs,
# ARGV[7+2n ..] stream fields.
# Returns {stream id, status}: 'new'; 'dup' (client id seen and handled); 'unhandled' (seen, never
# handled: a crash between store and reply); 'closed' (the conversation is gone: open a new one).
APPEND_LUA = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'closed' then return {'', 'closed'} end
if ARGV[1] ~= '' then
  local seen = redis.call('HGET', KEYS[3], 'c:' .. ARGV[1])
  if seen then
    if redis.call('HEXISTS', KEYS[3], 'h:' .. seen) == 1 then return {seen, 'dup'} end
    return {seen, 'unhandled'}
  end
end
local last = 6 + 2 * tonumber(ARGV[6])
local fields = {}
for i = last + 1, #ARGV do fields[#fields + 1] = ARGV[i] end
local id = redis.call('XADD', KEYS[2], '*', unpack(fields))
if ARGV[1] ~= '' then redis.call('HSET', KEYS[3], 'c:' .. ARGV[1], id) end
local hash = {'updated', ARGV[2]}
for i = 7, last do hash[#hash + 1] = ARGV[i] end
if ARGV[3] == 'customer' then
  redis.call('HINCRBY', KEYS[1], 'customer_messages', 1)
  hash[#hash + 1] = 'last_customer'
  hash[#hash + 1] = ARGV[2]
end
redis.call('HSET', KEYS[1], unpack(hash))
if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[4], '{"id":"' .. id .. '",' .. ARGV[5]) end
return {id, 'new'}
"""

# KEYS[1] conversation hash, KEYS[2] seen hash, KEYS[3] transcript stream
# ARGV[1] stream id of the customer message, ARGV[2] how many entries before it to search for the
# customer's earlier words (0 = none).
# Returns false if another caller claimed the message already, else {conversation hash as a flat
# list (empty if gone), texts of the customer's earlier messages, newest first}.
TURN_LUA = """
if redis.call('HSETNX', KEYS[2], 'h:' .. ARGV[1], 1) == 0 then return false end
local conv = redis.call('HGETALL', KEYS[1])
local earlier = {}
local count = tonumber(ARGV[2])
if count > 0 and #conv > 0 then
  for _, entry in ipairs(redis.call('XREVRANGE', KEYS[3], ARGV[1], '-', 'COUNT', count + 1)) do
    if entry[1] ~= ARGV[1] then
      local f = entry[2]
      local sender, kind, text = '', 'message', ''
      for i = 1, #f, 2 do
        if f[i] == 'sender' then sender = f[i + 1]
        elseif f[i] == 'kind' then kind = f[i + 1]
        elseif f[i] == 'text' then text = f[i + 1] end
      end
      if sender == 'customer' and kind == 'message' then earlier[#earlier + 1] = text end
    end
  end
end
return {conv, earlier}
"""

# KEYS[1] conversation hash, KEYS[2] transcript stream
# ARGV[1] cutoff (ms; '' = close whatever the last activity), ARGV[2] now (ms), ARGV[3] closed by,
# ARGV[4] required state ('' = any open state), ARGV[5..] stream fields of the closing message (optional)
# Returns the closing message's stream id, '' when closed without one, false when not closed.
CLOSE_LUA = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'closed' then return false end
if ARGV[4] ~= '' and state ~= ARGV[4] then return false end
if ARGV[1] ~= '' and tonumber(redis.call('HGET', KEYS[1], 'updated') or '0') > tonumber(ARGV[1]) then
  return false
end
local id = ''
if #ARGV >= 6 then
  local fields = {}
  for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
  id = redis.call('XADD', KEYS[2], '*', unpack(fields))
end
redis.call('HSET', KEYS[1], 'state', 'closed', 'closed_at', ARGV[2], 'closed_by', ARGV[3], 'updated', ARGV[2])
return id
"""

# KEYS[1] customer's current conversation, KEYS[2] customer's last conversation
# ARGV[1] conversation id. Forgets the conversation as current only if it still is; returns 1 if so.
DETACH_LUA = """
redis.call('SET', KEYS[2], ARGV[1])
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

# KEYS[1] customer_last(key); ARGV[1] a conversation being discarded, ARGV[2] the one before it ('' if
# none). The customer's most recent conversation goes back to that one, if it was the discarded one.
UNLAST_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
end
"""


StreamEntries = list[tuple[str, dict[str, str]]]
HashValue = str | int

# The idle index (keys.ACTIVE) is moved forward at most this often per conversation by this process:
# it may lag the record by this much, which the sweeper allows for (the close script checks the
# record's own `updated`, and a refused close re-indexes). One ZADD per turn would cost a round trip.
TOUCH_EVERY_MS = 60_000
# Bounds on the per-process memos (oldest dropped first); a dropped memo only costs a round trip.
MEMO_MAX = 100_000
# Connections the hot path's script calls are pipelined on at once (see _Pipeliner), and the most
# bytes of calls sent on one of them at a time. Redis reads a client's pipeline 16 KB at a time and,
# with `appendfsync always`, fsyncs between reads: a bigger batch would wait for several fsyncs while
# batches on other connections are read in the same round.
PIPELINES = 8
BATCH_BYTES = 16 * 1024


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Conversation:
    id: str
    key: str
    channel: str
    state: State
    lang: str
    created: int
    updated: int
    customer: str = ""
    greeted: bool = False
    misunderstandings: int = 0
    customer_messages: int = 0
    awaiting: str = ""  # what the last bot turn asked: "helpful", "clarify", ""
    last_entry: str = ""  # the FAQ entry last answered
    last_question: str = ""  # what it answered, or what it offered suggestions for: the customer's words
    suggested: tuple[str, ...] = ()  # the entries offered for last_question ("did you mean ...")
    mood: float | None = None  # the conversation's mood score, when a mood detector runs
    escalation: dict[str, Any] = field(default_factory=dict)
    previous: str = ""  # the customer's conversation before this one: the widget shows its end too

    @classmethod
    def from_hash(cls, data: Mapping[str, str]) -> Conversation:
        state = data.get("state", "closed")
        return cls(
            id=data["id"],
            key=data.get("key", ""),
            channel=data.get("channel", "web"),
            state=cast(State, state if state in STATES else "closed"),
            lang=data.get("lang", "en"),
            created=int(data.get("created", 0)),
            updated=int(data.get("updated", 0)),
            customer=data.get("customer", ""),
            greeted=data.get("greeted") == "1",
            misunderstandings=int(data.get("misunderstandings", 0)),
            customer_messages=int(data.get("customer_messages", 0)),
            awaiting=data.get("awaiting", ""),
            last_entry=data.get("last_entry", ""),
            last_question=data.get("last_question", ""),
            suggested=tuple(data.get("suggested", "").split()),
            mood=float(data["mood"]) if data.get("mood") else None,
            escalation=json.loads(data["escalation"]) if data.get("escalation") else {},
            previous=data.get("previous", ""),
        )


@dataclass(frozen=True)
class LogEntry:
    """One transcript entry as stored in `conv:{id}:log`."""

    id: str
    sender: str
    text: str
    ts: int
    kind: str = "message"
    lang: str = ""
    buttons: tuple[Button, ...] = ()
    value: str = ""
    client_id: str = ""
    author: str = ""
    attachments: tuple[Attachment, ...] = ()
    decision: dict[str, Any] | None = None

    @property
    def ends_handoff(self) -> bool:
        """What closed an earlier handoff of this conversation for the customer: the rating question, the
        thanks for the stars or the comment (and, in transcripts from before RATING_KIND, the stars' buttons)."""
        return self.sender == "system" and (
            self.kind == RATING_KIND or any(b.value.startswith(RATE_PREFIX) for b in self.buttons)
        )

    @classmethod
    def from_stream(cls, entry_id: str, f: Mapping[str, str]) -> LogEntry:
        return cls(
            id=entry_id,
            sender=f.get("sender", "system"),
            text=f.get("text", ""),
            ts=int(f.get("ts", 0)),
            kind=f.get("kind", "message"),
            lang=f.get("lang", ""),
            buttons=tuple(Button(**b) for b in json.loads(f.get("buttons") or "[]")),
            value=f.get("value", ""),
            client_id=f.get("client_id", ""),
            author=f.get("author", ""),
            attachments=tuple(Attachment(**a) for a in json.loads(f.get("attachments") or "[]")),
            decision=json.loads(f["decision"]) if f.get("decision") else None,
        )


def entry_fields(
    sender: str,
    text: str,
    *,
    ts: int,
    kind: str = "message",
    lang: str = "",
    buttons: Sequence[Button] = (),
    value: str = "",
    client_id: str = "",
    author: str = "",
    attachments: Sequence[Attachment] = (),
    decision: Mapping[str, Any] | None = None,
) -> list[str]:
    """Stream fields of a transcript entry, flat (field, value, ...), empty ones left out."""
    pairs: dict[str, str] = {"sender": sender, "text": text, "ts": str(ts), "kind": kind, "lang": lang,
                             "value": value, "client_id": client_id, "author": author}
    if buttons:
        pairs["buttons"] = orjson.dumps([{"label": b.label, "value": b.value} for b in buttons]).decode()
    if attachments:
        pairs["attachments"] = orjson.dumps(
            [{"kind": a.kind, "caption": a.caption, "ref": a.ref} for a in attachments]
        ).decode()
    if decision is not None:
        # Scores may be numpy floats.
        pairs["decision"] = orjson.dumps(decision, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    return [x for k, v in pairs.items() if v or k in ("sender", "text", "ts") for x in (k, v)]


@dataclass(frozen=True)
class Appended:
    message_id: str
    status: str  # "new" | "dup" | "unhandled" | "closed"


@dataclass(frozen=True)
class Turn:
    """A customer message claimed for handling: the conversation as it stands, and what they said before."""

    conversation: Conversation | None  # None: the record is gone
    earlier: tuple[str, ...] = ()  # texts of the customer's earlier messages, oldest first


ScriptArg = str | int


class _Pipeliner:
    """Script calls of the hot path, sent together: those that concurrent turns issue in the same
    moment go to Redis in batches of up to BATCH_BYTES, pipelined on up to PIPELINES connections of
    the client's pool.

    Each call is still its own atomic script and its caller awaits its own reply; only the round
    trips are shared (a busy widget channel has dozens of turns in flight). A connection error fails
    the calls of that batch, as it would fail them one by one; nothing is sent twice.
    """

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._pending: list[tuple[bytes, asyncio.Future[Any]]] = []
        self._running: set[asyncio.Task[None]] = set()

    async def run(self, script: AsyncScript, keys: Sequence[str], args: Sequence[ScriptArg]) -> Any:
        # hiredis writes the command in the Redis protocol in C, without redis-py's per-argument cost.
        # (Its type stub reads the tuple as one element long: hence the cast.)
        command = hiredis.pack_command(cast(Any, ("EVALSHA", script.sha, len(keys), *keys, *args)))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((command, future))
        self._start()
        try:
            return await future
        except NoScriptError:
            # A Redis that restarted or flushed its scripts: the script did not run; redis-py loads it.
            return await script(keys=keys, args=args)

    def _start(self) -> None:
        # The task's first step runs after the callbacks ready now: the calls of this moment join it.
        if self._pending and len(self._running) < PIPELINES:
            task = asyncio.create_task(self._flush(), name="redis pipeliner")
            self._running.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if not task.cancelled():  # cancelled: the loop is shutting down
            self._start()  # calls that came while the last batch was being released

    def _take(self) -> list[tuple[bytes, asyncio.Future[Any]]]:
        """The oldest pending calls, up to BATCH_BYTES (at least one)."""
        size, count = 0, 0
        for command, _ in self._pending:
            size += len(command)
            if count and size > BATCH_BYTES:
                break
            count += 1
        batch = self._pending[:count]
        del self._pending[:count]
        return batch

    async def _flush(self) -> None:
        if not self._pending:
            return
        pool = self.redis.connection_pool
        try:
            conn = await pool.get_connection()
        except BaseException as exc:
            waiting, self._pending = self._pending, []
            _fail(waiting, exc)
            if not isinstance(exc, Exception):
                raise
            return
        batch: list[tuple[bytes, asyncio.Future[Any]]] = []
        try:
            while self._pending:
                batch = self._take()
                await conn.send_packed_command(b"".join(c for c, _ in batch), check_health=False)
                for _, future in batch:
                    try:
                        reply = await conn.read_response()
                    except ResponseError as exc:
                        if not future.done():
                            future.set_exception(exc)
                    else:
                        if not future.done():
                            future.set_result(reply)
        except BaseException as exc:
            # Unread replies would be read by the connection's next user: it must not be reused.
            await conn.disconnect(nowait=True)
            _fail(batch, exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            await pool.release(conn)


def _fail(batch: list[tuple[bytes, asyncio.Future[Any]]], exc: BaseException) -> None:
    error = exc if isinstance(exc, Exception) else RedisConnectionError("the Redis pipeline was cancelled")
    for _, future in batch:
        if not future.done():
            future.set_exception(error)


def _remember(memo: dict[str, Any], key: str, value: Any) -> None:
    memo.pop(key, None)
    memo[key] = value
    if len(memo) > MEMO_MAX:
        del memo[next(iter(memo))]  # dicts keep insertion order: this is the oldest


class Conversations:
    """Reads and writes conversations; every multi-key change is one Lua script on one hash tag."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._append = redis.register_script(APPEND_LUA)
        self._turn = redis.register_script(TURN_LUA)
        self._close = redis.register_script(CLOSE_LUA)
        self._detach = redis.register_script(DETACH_LUA)
        self._unlast = redis.register_script(UNLAST_LUA)
        self._pipeline = _Pipeliner(redis)
        # conversation key -> id of the conversation this process last found open for it. Only a hint:
        # every append checks the state itself and says "closed" when the hint is stale.
        self._open_ids: dict[str, str] = {}
        self._touched: dict[str, int] = {}  # conversation id -> when this process last indexed it

    async def current_id(self, conversation_key: str) -> str | None:
        return cast(str | None, await self.redis.get(keys.customer(conversation_key)))

    async def last_id(self, conversation_key: str) -> str | None:
        """The open conversation, else the most recent closed one."""
        current = await self.current_id(conversation_key)
        return current or cast(str | None, await self.redis.get(keys.customer_last(conversation_key)))

    async def get(self, conversation_id: str) -> Conversation | None:
        data = cast(dict[str, str], await self.redis.hgetall(keys.conv(conversation_id)))
        return Conversation.from_hash(data) if data else None

    async def open(self, conversation_key: str, channel: str, lang: str,
                   customer: str = "") -> tuple[str, bool]:
        """(id of the customer's open conversation, created now?); creates one if none is open."""
        current = await self.current_id(conversation_key)
        if current and await self._is_open(current):
            _remember(self._open_ids, conversation_key, current)
            return current, False
        if current:
            await self.detach(conversation_key, current)
        previous = current or cast(str | None, await self.redis.get(keys.customer_last(conversation_key)))
        cid = uuid.uuid4().hex
        ts = now_ms()
        # The record exists before the mapping points at it, so whoever reads the mapping finds it.
        await self.redis.hset(keys.conv(cid), mapping={
            "id": cid, "key": conversation_key, "channel": channel, "state": "bot", "lang": lang,
            "customer": customer, "created": ts, "updated": ts, "misunderstandings": 0,
            "customer_messages": 0, "previous": previous or "",
        })
        if await self.redis.set(keys.customer(conversation_key), cid, nx=True):
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zadd(keys.ACTIVE, {cid: ts})
                pipe.set(keys.customer_last(conversation_key), cid)
                await pipe.execute()
            _remember(self._touched, cid, ts)
            _remember(self._open_ids, conversation_key, cid)
            logger.info("conversation %s opened for %s", cid, conversation_key)
            return cid, True
        # Another worker opened one first: use theirs.
        await self.redis.delete(keys.conv(cid))
        return await self.open(conversation_key, channel, lang, customer)

    def known_open(self, conversation_key: str) -> str | None:
        """The id this process last found open for the key, without asking Redis; may be stale, so
        use it only for an `append`, which refuses a closed conversation (then `forget_open` and `open`)."""
        return self._open_ids.get(conversation_key)

    def forget_open(self, conversation_key: str) -> None:
        self._open_ids.pop(conversation_key, None)

    async def lang_of(self, conversation_id: str) -> str | None:
        return cast(str | None, await self.redis.hget(keys.conv(conversation_id), "lang"))

    async def _is_open(self, conversation_id: str) -> bool:
        state = await self.redis.hget(keys.conv(conversation_id), "state")
        return state is not None and state != "closed"

    async def append(self, conversation_id: str, fields: Sequence[str], *, client_id: str = "",
                     sender: str = "bot", ts: int | None = None,
                     changes: Mapping[str, HashValue] | None = None,
                     announce: tuple[str, str] = ("", "")) -> Appended:
        """Append a transcript entry (de-duplicated on `client_id` when given). Only if it is appended:
        `changes` are set on the conversation record and `announce` = (pub/sub channel, JSON object
        without its opening brace) is published with the entry's id put first, all in the same step."""
        cid = conversation_id
        ts = ts or now_ms()
        pairs = [x for item in (changes or {}).items() for x in item]
        result = await self._pipeline.run(
            self._append,
            [keys.conv(cid), keys.conv_log(cid), keys.conv_seen(cid)],
            [client_id, ts, sender, *announce, len(pairs) // 2, *pairs, *fields],
        )
        appended = Appended(message_id=str(result[0]), status=str(result[1]))
        if appended.status == "new":
            await self._touch(cid, ts)
        return appended

    async def _touch(self, conversation_id: str, ts: int) -> None:
        last = self._touched.get(conversation_id)
        if last is not None and ts - last < TOUCH_EVERY_MS:
            return
        _remember(self._touched, conversation_id, ts)
        await self.redis.zadd(keys.ACTIVE, {conversation_id: ts}, xx=True)

    async def begin_turn(self, conversation_id: str, message_id: str, search: int = 0) -> Turn | None:
        """Claim a customer message (None if another caller has) and read the conversation, with the
        customer's earlier texts among the `search` transcript entries before it, in one step."""
        cid = conversation_id
        result = await self._pipeline.run(
            self._turn, [keys.conv(cid), keys.conv_seen(cid), keys.conv_log(cid)], [message_id, search]
        )
        if not result:
            return None
        flat, earlier = cast(list[str], result[0]), cast(list[str], result[1])
        if not flat:
            return Turn(None)
        record = dict(zip(flat[::2], flat[1::2], strict=True))
        return Turn(Conversation.from_hash(record), tuple(reversed(earlier)))

    async def claim(self, conversation_id: str, message_id: str) -> bool:
        """True for the one caller that gets to handle this customer message."""
        return bool(await self.redis.hsetnx(keys.conv_seen(conversation_id), f"h:{message_id}", 1))

    async def mark_greeted(self, conversation_id: str) -> bool:
        """True for the one caller that gets to greet."""
        return bool(await self.redis.hsetnx(keys.conv(conversation_id), "greeted", "1"))

    async def update(self, conversation_id: str, **values: str | int) -> None:
        await self.redis.hset(keys.conv(conversation_id), mapping=cast(Any, values))

    async def count_misunderstanding(self, conversation_id: str) -> int:
        return int(await self.redis.hincrby(keys.conv(conversation_id), "misunderstandings", 1))

    async def set_state(self, conversation_id: str, state: State) -> None:
        if state not in STATES or state == "closed":
            raise ValueError(f"illegal conversation state {state!r} (close() closes)")
        await self.redis.hset(keys.conv(conversation_id), mapping={"state": state, "updated": now_ms()})
        if state in ("bot", "resolved"):
            # Back with the bot (resolved: it may rate or ask more): the idle sweeper watches it again.
            await self.redis.zadd(keys.ACTIVE, {conversation_id: now_ms()})

    async def close(self, conversation: Conversation, closed_by: str, *, message: Sequence[str] = (),
                    idle_before: int | None = None, only_state: str = "") -> str | None:
        """Close the conversation (atomically with its closing message); None if it was not closed.

        `idle_before`: close only if nothing happened since then. `only_state`: only in this state.
        """
        cid = conversation.id
        closed_at = now_ms()
        result = await self._close(
            keys=[keys.conv(cid), keys.conv_log(cid)],
            args=["" if idle_before is None else idle_before, closed_at, closed_by, only_state, *message],
        )
        if result is None:
            return None
        # Indexed for the retention pass by its own command, not inside the close script: the index has no
        # hash tag of the conversation's, and a script over both would fail on Redis Cluster (CROSSSLOT).
        # A close whose ZADD is lost (a crash between the two) is found by the pass's SCAN backfill.
        await self.redis.zadd(keys.CLOSED, {cid: closed_at})
        await self.detach(conversation.key, cid)
        logger.info("conversation %s closed by %s", cid, closed_by)
        return str(result)

    async def detach(self, conversation_key: str, conversation_id: str) -> None:
        if self._open_ids.get(conversation_key) == conversation_id:
            del self._open_ids[conversation_key]
        await self._detach(keys=[keys.customer(conversation_key), keys.customer_last(conversation_key)],
                           args=[conversation_id])
        await self.redis.zrem(keys.ACTIVE, conversation_id)

    async def discard(self, conversation: Conversation) -> None:
        """Remove a closed conversation the customer never wrote in (a widget opened and left): it held
        only the bot's greeting, and kept, every opened widget would stay in Redis for good."""
        cid = conversation.id
        await self.redis.delete(keys.conv(cid), keys.conv_log(cid), keys.conv_seen(cid))
        await self.redis.zrem(keys.CLOSED, cid)
        await self._unlast(keys=[keys.customer_last(conversation.key)], args=[cid, conversation.previous])
        logger.info("conversation %s discarded: the customer never wrote", cid)

    async def log(self, conversation_id: str, limit: int = 200) -> list[LogEntry]:
        """The last `limit` transcript entries, oldest first."""
        found = await self.redis.xrevrange(keys.conv_log(conversation_id), count=max(limit, 1))
        raw = cast(StreamEntries, found)
        return [LogEntry.from_stream(i, f) for i, f in reversed(raw)]

    async def entry(self, conversation_id: str, message_id: str) -> LogEntry | None:
        raw = cast(StreamEntries, await self.redis.xrange(keys.conv_log(conversation_id),
                                                          min=message_id, max=message_id))
        return LogEntry.from_stream(*raw[0]) if raw else None

    async def idle(self, before: int, limit: int = 100) -> list[str]:
        """Ids of conversations whose last activity is at or before `before` (ms), oldest first."""
        found = await self.redis.zrangebyscore(keys.ACTIVE, "-inf", before, start=0, num=limit)
        return cast(list[str], found)

    async def watch_idle(self, conversation_id: str, last_activity: int) -> None:
        """Correct the idle index after a refused close (the index lags the record by one write)."""
        await self.redis.zadd(keys.ACTIVE, {conversation_id: last_activity}, xx=True)

    async def forget_idle(self, conversation_id: str) -> None:
        """Stop watching a conversation for idleness (it is with a person, or gone)."""
        await self.redis.zrem(keys.ACTIVE, conversation_id)
