"""Deleting conversations and everything kept under their ids: the retention pass (closed conversations
older than `store.keep_closed_days`) and the erasure of one customer (`relevo customer forget`)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import redis.asyncio as aioredis

from handoff import keys
from handoff.conversations import now_ms

logger = logging.getLogger(__name__)

DAY_MS = 86_400_000
PASS_BATCH = 2000  # conversations deleted per pass at most: one pass stays short whatever the backlog
# A pass an hour at most (the idle sweep runs every few seconds): deleting a rated or noted conversation
# rewrites the audit stream once per pass (blank_audit), so passes are few and each takes a batch.
PASS_EVERY_MS = 3_600_000
# The backfill of conversations closed before keys.CLOSED existed: a few SCAN steps per pass, and a new
# round a day after one ends (it also finds a close whose index ZADD was lost to a crash).
BACKFILL_SCAN_COUNT = 1000
BACKFILL_STEPS_PER_PASS = 5
BACKFILL_AGAIN_MS = DAY_MS
STREAM_PAGE = 5000
# Audit events whose `detail` Relevo writes itself ("first reply overdue"); every other detail is free text
# (a rating comment, an agent's note on a transfer, escalation or resolution): personal data.
GENERATED_DETAIL = frozenset({"sla_breach"})
WITH_A_PERSON = frozenset({"queued", "assigned"})

# KEYS[1] the conversation hash, KEYS[2..] its other keys (all under its hash tag). ARGV[1] '1': only if
# closed or already gone. Returns the number of keys deleted, -1 when it is open.
ERASE_LUA = """
local state = redis.call('HGET', KEYS[1], 'state')
if ARGV[1] == '1' and state and state ~= 'closed' then return -1 end
return redis.call('DEL', unpack(KEYS))
"""

# KEYS[1] ckey (open conversation), KEYS[2] ckey:last, KEYS[3] the customer's handoffs; ARGV[1] the id.
# The customer's pointers forget the conversation only if they still name it.
UNLINK_CUSTOMER_LUA = """
for i = 1, 2 do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
return redis.call('ZREM', KEYS[3], ARGV[1])
"""

# KEYS[1] handoff states, KEYS[2..] the {q} sorted sets keyed by conversation id. ARGV[1] the id.
# Refuses (returns the state) while the conversation is queued or assigned.
UNLINK_QUEUES_LUA = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if raw then
  local state = cjson.decode(raw).state
  if state == 'queued' or state == 'assigned' then return state end
  redis.call('HDEL', KEYS[1], ARGV[1])
end
for i = 2, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
return ''
"""

# KEYS[1] the audit stream, KEYS[2] its rewritten copy; ARGV[1] the last id copied ('' = none), ARGV[2..]
# conversation ids whose free text is blanked. Copies what was appended since, blanked likewise, and puts
# the copy in the stream's place, in one step: nothing appended meanwhile is lost.
AUDIT_TAIL_LUA = """
local blank = {}
for i = 2, #ARGV do blank[ARGV[i]] = true end
local start = '-'
if ARGV[1] ~= '' then start = '(' .. ARGV[1] end
for _, e in ipairs(redis.call('XRANGE', KEYS[1], start, '+')) do
  local f = e[2]
  local conv, event, at = '', '', 0
  for i = 1, #f, 2 do
    if f[i] == 'conv' then conv = f[i + 1] elseif f[i] == 'event' then event = f[i + 1]
    elseif f[i] == 'detail' then at = i + 1 end
  end
  if blank[conv] and event ~= 'sla_breach' and at > 0 then f[at] = '' end
  redis.call('XADD', KEYS[2], e[1], unpack(f))
end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('RENAME', KEYS[2], KEYS[1]) end
return 1
"""


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def conversation_keys(conversation_id: str) -> list[str]:
    """Every key under the conversation's hash tag with a fixed name, the record first. (The `told` notice
    markers carry a TTL of minutes and go by themselves; `forget` also SCANs for them.)"""
    cid = conversation_id
    return [
        keys.conv(cid), keys.conv_log(cid), keys.conv_seen(cid), keys.handoff_record(cid),
        keys.handoff_ended(cid), keys.notes_key(cid), keys.wait_key(cid), keys.status_message(cid),
        keys.telegram_shown(cid),
    ]  # fmt: skip


@dataclass
class Erased:
    """What an erasure deleted (counts and ids only: never the texts)."""

    conversations: list[str] = field(default_factory=list)
    keys: int = 0
    audit_blanked: int = 0  # audit entries whose free text was blanked
    unanswered: int = 0  # noted unanswered questions removed
    refused: list[tuple[str, str]] = field(default_factory=list)  # (id, state): open or with a person


async def _pages(redis: aioredis.Redis, key: str, start: str = "-") -> AsyncIterator[list[tuple[str, dict[str, str]]]]:
    """A stream read oldest first, a page at a time; at most AUDIT_MAXLEN entries."""
    scanned = 0
    while scanned < keys.AUDIT_MAXLEN:
        raw = await redis.xrange(key, min=start, count=STREAM_PAGE) or []
        rows = [(_text(i), {_text(k): _text(v) for k, v in (f or {}).items()}) for i, f in raw]
        if rows:
            yield rows
        if len(rows) < STREAM_PAGE:
            return
        scanned += len(rows)
        start = "(" + rows[-1][0]


def _personal(fields: dict[str, str], ids: set[str]) -> bool:
    return fields.get("conv") in ids and bool(fields.get("detail")) and fields.get("event") not in GENERATED_DETAIL


async def blank_audit(redis: aioredis.Redis, ids: Iterable[str], since_ms: int = 0) -> int:
    """Blank the free text (rating comments, agents' notes) of these conversations' audit entries; how many.

    The entries stay, with their ids, times, events and outcomes: the records' figures (handoffs, handling
    times, stars) are aggregate history, not the customer's words. A stream entry cannot be edited, so the
    stream is copied with those details blanked (same entry ids) and the copy renamed over it; only when
    one of them has such text (found by reading from `since_ms`, their earliest creation).
    """
    wanted = set(ids)
    if not wanted:
        return 0
    found = 0
    async for rows in _pages(redis, keys.AUDIT, f"{since_ms}-0" if since_ms > 0 else "-"):
        found += sum(1 for _, f in rows if _personal(f, wanted))
    if not found:
        return 0
    await redis.delete(keys.AUDIT_REWRITE)  # a copy left by a pass that died half-way
    last = ""
    async for rows in _pages(redis, keys.AUDIT):
        pipe = redis.pipeline(transaction=False)
        for entry_id, f in rows:
            if _personal(f, wanted):
                f = {**f, "detail": ""}
            pipe.xadd(keys.AUDIT_REWRITE, cast(Any, f), id=entry_id)
        await pipe.execute()
        last = rows[-1][0]
    tail = redis.register_script(AUDIT_TAIL_LUA)
    await tail(keys=[keys.AUDIT, keys.AUDIT_REWRITE], args=[last, *sorted(wanted)])
    return found


async def drop_unanswered(redis: aioredis.Redis, ids: Iterable[str]) -> int:
    """Remove these conversations' noted unanswered questions (the customer's own words); how many."""
    wanted = set(ids)
    gone: list[str] = []
    async for rows in _pages(redis, keys.UNANSWERED):
        gone += [i for i, f in rows if f.get("conv") in wanted]
    for at in range(0, len(gone), 500):
        await redis.xdel(keys.UNANSWERED, *gone[at : at + 500])
    return len(gone)


async def handoff_state(redis: aioredis.Redis, conversation_id: str) -> str:
    """The conversation's handoff state ("queued", "assigned") or "" when no handoff holds it."""
    raw = await redis.hget(keys.STATES, conversation_id)
    return str(json.loads(raw).get("state", "")) if raw else ""


async def erase(redis: aioredis.Redis, ids: Sequence[str], *, only_closed: bool = True) -> Erased:
    """Delete these conversations with every key of theirs, and their ids from the indexes and customer
    pointers; blank their audit free text. A conversation queued or assigned is never touched, nor (with
    `only_closed`) one still open: those are in `refused`."""
    out = Erased()
    erase_one = redis.register_script(ERASE_LUA)
    unlink_customer = redis.register_script(UNLINK_CUSTOMER_LUA)
    unlink_queues = redis.register_script(UNLINK_QUEUES_LUA)
    earliest = 0
    for cid in ids:
        key, state, created = cast(list[str | None], await redis.hmget(keys.conv(cid), ["key", "state", "created"]))
        if state and state != "closed" and only_closed:
            out.refused.append((cid, state))
            continue
        # The queue family first: once its handoff is gone from there, nothing moves it back.
        busy = _text(await unlink_queues(
            keys=[keys.STATES, keys.LEASES, keys.SLA_REPLY, keys.SLA_RESOLVE, keys.WAIT_CHECKS], args=[cid],
        ))  # fmt: skip
        if busy:
            out.refused.append((cid, busy))
            continue
        deleted = int(await erase_one(keys=conversation_keys(cid), args=["1" if only_closed else "0"]))
        if deleted < 0:  # reopened between the read and the script: cannot happen today, kept safe anyway
            out.refused.append((cid, "open"))
            continue
        if key:
            await unlink_customer(
                keys=[keys.customer(key), keys.customer_last(key), keys.handoffs_key(key)], args=[cid]
            )
        await redis.zrem(keys.ACTIVE, cid)
        await redis.zrem(keys.CLOSED, cid)
        out.conversations.append(cid)
        out.keys += deleted
        if created and created.isdigit():
            earliest = int(created) if not earliest else min(earliest, int(created))
    if out.conversations:
        out.audit_blanked = await blank_audit(redis, out.conversations, earliest)
        out.unanswered = await drop_unanswered(redis, out.conversations)
    return out


async def backfill(redis: aioredis.Redis, now: int) -> int:
    """Index by close time the closed conversations keys.CLOSED does not hold (closed before it existed,
    or a close whose ZADD was lost), a few SCAN steps per call; how many were indexed."""
    state = cast(dict[str, str], await redis.hgetall(keys.RETENTION_BACKFILL))
    done_at = int(state.get("done_at") or 0)
    if done_at and now - done_at < BACKFILL_AGAIN_MS and not state.get("cursor"):
        return 0
    cursor = int(state.get("cursor") or 0)
    indexed = 0
    for _ in range(BACKFILL_STEPS_PER_PASS):
        cursor, found = await redis.scan(cursor, match="conv:{*}", count=BACKFILL_SCAN_COUNT, _type="hash")
        for name in map(_text, found):
            if not name.endswith("}"):
                continue  # conv:{id}:seen and the like: the record is conv:{id}
            cid = name[len("conv:{"):-1]
            st, closed_at, updated = cast(list[str | None], await redis.hmget(name, ["state", "closed_at", "updated"]))
            if st == "closed":
                indexed += int(cast(int, await redis.zadd(keys.CLOSED, {cid: int(closed_at or updated or 0)}, nx=True)))
        if cursor == 0:
            await redis.hset(keys.RETENTION_BACKFILL, mapping={"done_at": now, "cursor": ""})
            break
    else:
        await redis.hset(keys.RETENTION_BACKFILL, "cursor", cursor)
    if indexed:
        logger.info("retention: indexed %d conversation(s) closed before the retention index", indexed)
    return indexed


class Retention:
    """Deletes closed conversations older than `keep_days` (0: never), PASS_BATCH per pass, oldest first.

    Run by the idle sweeper, under its lease: one worker at a time."""

    def __init__(self, redis: aioredis.Redis, keep_days: int, batch: int = PASS_BATCH,
                 every_ms: int = PASS_EVERY_MS) -> None:
        self.redis = redis
        self.keep_days = keep_days
        self.batch = batch
        self.every_ms = every_ms
        self._next = 0  # this worker's next pass (ms); another worker taking the sweep over may run one sooner

    async def run_once(self, now: int | None = None) -> int:
        """One pass (none if this worker ran one less than `every_ms` ago); how many it deleted."""
        if self.keep_days <= 0:
            return 0
        now = now_ms() if now is None else now
        if now < self._next:
            return 0
        self._next = now + self.every_ms
        await backfill(self.redis, now)
        cutoff = now - self.keep_days * DAY_MS
        due = cast(list[str], await self.redis.zrangebyscore(keys.CLOSED, "-inf", cutoff, start=0, num=self.batch))
        if not due:
            return 0
        erased = await erase(self.redis, [_text(c) for c in due])
        if erased.refused:
            # Closed, yet its handoff still holds it (queued or assigned): kept, and looked at again a
            # retention period later rather than at the head of every pass.
            await self.redis.zadd(keys.CLOSED, {cid: now for cid, _ in erased.refused})
            logger.warning("retention: kept %d closed conversation(s) a handoff still holds: %s",
                           len(erased.refused), ", ".join(f"{c} ({s})" for c, s in erased.refused[:5]))
        if erased.conversations:
            day = datetime.fromtimestamp(cutoff / 1000, UTC).strftime("%Y-%m-%d")
            logger.info("retention: deleted %d conversations closed before %s", len(erased.conversations), day)
        return len(erased.conversations)


CHAIN_MAX = 10_000  # a customer's `previous` chain is followed this far at most (a loop cannot spin)
CHANNEL_PREFIXES = ("web:", "telegram:")


async def customer_key(redis: aioredis.Redis, given: str) -> str:
    """The conversation key ("web:<session>", "telegram:<chat id>") for a key or a conversation id; the
    given text when it is neither (nothing stored is found for it)."""
    if given.startswith(CHANNEL_PREFIXES):
        return given
    found = await redis.hget(keys.conv(given), "key")
    return _text(found) if found else given


async def customer_conversations(redis: aioredis.Redis, conversation_key: str) -> list[str]:
    """Every stored conversation of this customer, oldest first: the open and the last one, those handed
    to a person, and each one's `previous` chain; only those whose record names this customer."""
    start = [await redis.get(keys.customer(conversation_key)), await redis.get(keys.customer_last(conversation_key))]
    start += cast(list[str], await redis.zrange(keys.handoffs_key(conversation_key), 0, -1))
    todo = [_text(c) for c in start if c]
    seen: dict[str, int] = {}
    while todo and len(seen) < CHAIN_MAX:
        cid = todo.pop()
        if cid in seen:
            continue
        found = await redis.hmget(keys.conv(cid), ["key", "previous", "created"])
        key, previous, created = cast(list[str | None], found)
        if key is None:
            continue  # deleted already (retention, or a conversation nobody wrote in)
        if key != conversation_key:
            continue  # never another customer's, whatever a pointer says
        seen[cid] = int(created or 0)
        if previous:
            todo.append(previous)
    return sorted(seen, key=lambda c: (seen[c], c))


async def leftover_keys(redis: aioredis.Redis, ids: Iterable[str]) -> int:
    """Delete whatever else still carries one of these ids as its hash tag (the `told` markers, which have
    a TTL); one SCAN of the keyspace, for an erasure asked for by hand. How many."""
    tags = {"{" + i + "}" for i in ids}
    if not tags:
        return 0
    found = [k async for k in redis.scan_iter(count=1000) if any(t in _text(k) for t in tags)]
    return int(await redis.delete(*found)) if found else 0
