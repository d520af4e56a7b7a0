"""Delivery machinery: retries, parked messages and their Lua scripts, each chat's ordering marks."""

from __future__ import annotations

import datetime as dt
import json
import os
import warnings
from dataclasses import dataclass

from telegram.error import RetryAfter

from bot.messages import Outbound, OutEvent

# PTB 22 warns on every flood-limit error unless opted in to its v23 time periods (timedelta), which
# this module reads either way; an operator's own setting wins.
os.environ.setdefault("PTB_TIMEDELTA", "true")

# OWN_LUA's verdicts.
OWNED_BY_OTHER, OWNED, TAKEN_OVER = 0, 1, 2
HELD_PER_CHAT = 200  # another worker's recent events kept per chat, in case it dies before sending them
TAKEOVER_SLACK_S = 0.2  # past the other worker's lease, before looking whether it is gone
MARK_TTL_S = 24 * 3600


def event_mark(event: OutEvent) -> str:
    """What names an event among a chat's: a message by its transcript id, a status by what it says."""
    if isinstance(event, Outbound):
        return event.id
    return f"{event.conversation_id}:{event.state}:{event.position}:{event.eta_s}:{event.agent}"


def done_with(events: list[OutEvent], mark: str) -> int:
    """How many of the events the worker that marked `mark` was done with: up to its last one so named
    (a status can repeat), none if it is not among them."""
    marks = [event_mark(e) for e in events]
    return len(marks) - marks[::-1].index(mark) if mark in marks else 0


def retry_after_s(exc: RetryAfter) -> float:
    # PTB 22 warns on reading retry_after as an int; read it either way without the warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


class Deferred(Exception):
    """Telegram held the message back (flood limit, network): try again after `delay_s`."""

    def __init__(self, delay_s: float) -> None:
        super().__init__(f"deferred for {delay_s:.1f} s")
        self.delay_s = delay_s


@dataclass(frozen=True)
class Retries:
    """How hard one delivery tries before the message is parked for a later attempt."""

    flood_attempts: int = 3
    max_flood_wait_s: float = 60.0
    network_attempts: int = 3
    backoff_s: float = 0.5
    park_s: float = 30.0
    max_parks: int = 100  # about a day at park_s and above: then the transcript is all that is left
    pending_poll_s: float = 2.0
    # How long a worker stays the one that delivers a chat's messages after it last took one: longer
    # than a send takes (so the next message does not overtake it through another worker). Should the
    # worker die, another one takes the chat over this long after, with what the dead one had not sent.
    owner_lease_s: float = 15.0
    # A worker sending a chat's parked messages holds the chat this long past each message; should it
    # vanish, another worker takes the chat over then.
    drain_lease_s: float = 120.0


@dataclass
class Progress:
    """How many parts of a long message Telegram has taken (a retry sends only the rest)."""

    parts: int = 0


def parked_item(event: OutEvent, tries: int, parts: int) -> str:
    return json.dumps({"event": event.to_json(), "tries": tries, "parts": parts})


# KEYS[1] PENDING, KEYS[2] parked_key(chat); ARGV[1] chat id, ARGV[2] item, ARGV[3] when to try the
# chat (ms) if it is not scheduled yet, ARGV[4] "1" = park only behind parked ones. Returns how many
# items the chat has parked now, 0 if nothing was parked.
PARK_LUA = """
if ARGV[4] == '1' and redis.call('LLEN', KEYS[2]) == 0 then return 0 end
local n = redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[1], 'NX', ARGV[3], ARGV[1])
return n
"""
# KEYS[1] PENDING; ARGV[1] chat id, ARGV[2] now (ms), ARGV[3] lease end (ms). Returns 1 to the one
# caller that takes the due chat; the chat stays scheduled at the lease end in case the taker vanishes.
TAKE_LUA = """
local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
if due and tonumber(due) <= tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
return 0
"""
# KEYS[1] PENDING, KEYS[2] parked_key(chat); ARGV[1] chat id, ARGV[2] lease end (ms). Drops the
# chat's first item (done with); returns how many are left, unscheduling a chat with none.
NEXT_LUA = """
redis.call('LPOP', KEYS[2])
local n = redis.call('LLEN', KEYS[2])
if n == 0 then redis.call('ZREM', KEYS[1], ARGV[1]) else redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1]) end
return n
"""
# KEYS[1] delivery_owner(chat), KEYS[2] delivery_mark(chat); ARGV[1] this worker, ARGV[2] lease (ms).
# {1, ''}: this worker delivers the chat's messages, its lease renewed. {2, mark}: it does from now on,
# the chat was nobody's (mark: the last event the worker before was done with). {0, ms}: another worker
# does, for ms more unless it renews.
OWN_LUA = """
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return {0, redis.call('PTTL', KEYS[1])} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if owner then return {1, ''} end
return {2, redis.call('GET', KEYS[2]) or ''}
"""
# KEYS[1] delivery_owner(chat); ARGV[1] this worker. Gives the chat up, if it is still this worker's.
DISOWN_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
"""
# KEYS[1] PENDING, KEYS[2] parked_key(chat); ARGV[1] chat id, ARGV[2] the first item with its tries
# counted, ARGV[3] when to try again (ms). The first item failed again: it stays first. Returns nothing.
RETRY_LUA = """
if redis.call('LLEN', KEYS[2]) > 0 then redis.call('LSET', KEYS[2], 0, ARGV[2]) end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
"""
