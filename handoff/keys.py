"""Every Redis key and channel name Relevo uses; conversation keys carry the id as a hash tag."""

from __future__ import annotations

import logging
from urllib.parse import quote

logger = logging.getLogger(__name__)

# Keys of one conversation share the hash tag `{<conversation id>}` so that a Lua script touching
# several of them stays valid on Redis Cluster. Keys of one customer (conversation key) likewise
# share `{<conversation key>}`.
PREFIX = "relevo"

# Sorted set: conversation id -> last activity (ms); the idle sweeper reads the oldest.
ACTIVE = f"{PREFIX}:convs:active"
# Sorted set: closed conversation id -> when it closed (ms); the retention pass (handoff/retention.py)
# deletes the oldest once they are older than store.keep_closed_days.
CLOSED = f"{PREFIX}:convs:closed"
# Hash: the retention pass's SCAN over conversations closed before CLOSED existed (cursor, done_at).
RETENTION_BACKFILL = f"{PREFIX}:retention:backfill"
# Stream: questions the bot could not answer (bot/unanswered.py), capped at its newest entries.
UNANSWERED = f"{PREFIX}:unanswered"
IDLE_LEASE_NAME = "idle"
# String: the secret that signs widget session tokens and console cookies when server.session_secret
# is empty. In Redis, not in each worker's data folder, so every worker on this Redis accepts the
# sessions the others issued (bot/session_secret.py).
SESSION_SECRET = f"{PREFIX}:session_secret"
# String: a random id written once, when Relevo first used this Redis. Missing while a data folder
# remembers one: Redis lost Relevo's data (handoff/store_checks.py).
STORE_CREATED = f"{PREFIX}:store:created"


def conv(conversation_id: str) -> str:
    """Hash: the conversation record (state, lang, channel, counters, escalation)."""
    return f"conv:{{{conversation_id}}}"


def conv_log(conversation_id: str) -> str:
    """Stream: the transcript, one entry per message (customer, bot, agent, system)."""
    return f"conv:{{{conversation_id}}}:log"


def conv_seen(conversation_id: str) -> str:
    """Hash: `c:<client id>` -> stream id (de-duplication), `h:<stream id>` -> 1 (handled)."""
    return f"conv:{{{conversation_id}}}:seen"


def customer(conversation_key: str) -> str:
    """String: the id of the customer's open conversation ("web:<session>", "telegram:<chat>")."""
    return f"ckey:{{{conversation_key}}}"


def customer_last(conversation_key: str) -> str:
    """String: the id of the customer's most recent conversation, open or closed (for history)."""
    return f"ckey:{{{conversation_key}}}:last"


def out_channel(channel: str) -> str:
    """Pub/sub channel: events for the customers of one channel kind ("web", "telegram")."""
    return f"{PREFIX}:out:{channel}"


def lease(name: str) -> str:
    """String with a TTL: which worker runs a once-only job (idle sweep, Telegram polling)."""
    return f"{PREFIX}:lease:{name}"


# ---- handoff queues, agents, SLA timers and the audit stream ---------------------------------------
# Why one hash tag `{q}` for the whole queue family instead of one per conversation:
# a claim, a transfer or a requeue must change a queue sorted set, the conversation's handoff
# state, the lease set, the agent's load and the audit stream in ONE Lua script. On Redis Cluster
# every key a script touches must live in the same slot, and a queue holds many conversations, so
# the conversation's own tag (`conv:{id}`) cannot be used here. The per-conversation handoff state
# therefore lives in fixed `{q}`-tagged hashes keyed by conversation id (field = conversation id),
# which also lets `claim next` update a conversation it only discovers inside the script while
# declaring every key in KEYS. The cost: the queue family is one slot (one shard's worth of
# throughput), which the claim benchmark shows is far above what a support desk needs.
# The large handoff record (transcript, summary) is never touched by a script and stays under the
# conversation's own tag (`handoff_record`).
TAG = "{q}"

# Hash: conversation id -> JSON of its handoff state (state, department, tier, priority, agent ...).
STATES = f"{PREFIX}:{TAG}:ho"
# Sorted set: conversation id -> claim lease expiry (ms). The lease sweeper requeues lapsed ones.
LEASES = f"{PREFIX}:{TAG}:leases"
# Sorted set: agent name -> number of conversations assigned (the load automatic routing balances).
LOAD = f"{PREFIX}:{TAG}:load"
# Sorted set, all scores 0: "<agent>|<conversation id>" so ZRANGEBYLEX lists one agent's conversations.
BY_AGENT = f"{PREFIX}:{TAG}:by_agent"
# Sorted sets: conversation id -> SLA deadline (ms) for the first agent reply / for resolution.
SLA_REPLY = f"{PREFIX}:{TAG}:sla:reply"
SLA_RESOLVE = f"{PREFIX}:{TAG}:sla:resolve"
# Sorted sets: agent name -> presence expiry (ms), one per presence state that is not "offline".
PRESENCE_ONLINE = f"{PREFIX}:{TAG}:presence:online"
PRESENCE_AWAY = f"{PREFIX}:{TAG}:presence:away"
# Stream: the escalation record (queued, claimed, transferred, escalated, resolved ...). In the
# queue slot so each script appends its own audit entry atomically with the change it records.
AUDIT = f"{PREFIX}:{TAG}:audit"
AUDIT_MAXLEN = 1_000_000
# Stream: the audit stream being rewritten with the free text of erased conversations blanked (a stream
# entry cannot be edited in place); renamed over AUDIT when done (handoff/retention.py).
AUDIT_REWRITE = f"{PREFIX}:{TAG}:audit:rewrite"
# Pub/sub channel: every queue change as JSON, for the agent console and customer position updates.
EVENTS = f"{PREFIX}:handoff:events"
# Set of agent names; each agent's record is a hash of its own (no script reads it).
AGENTS = f"{PREFIX}:agents"
# Recent handling times kept per department for the wait estimate.
HANDLED_KEEP = 50
SWEEP_LEASE_NAME = "handoff-sweep"
# String: wall-clock ms of the last handoff sweep by any worker. A gap longer than a claim lease means
# Relevo itself was down, and no console could renew its claims meanwhile.
SWEPT_AT = f"{PREFIX}:{TAG}:swept_at"
# Separator inside BY_AGENT members; agent names and department names never contain it.
SEP = "|"


def queue(department: str, tier: int) -> str:
    """Sorted set: conversation id -> score (enqueue ms minus priority boost); lowest is served first."""
    return f"{PREFIX}:{TAG}:queue:{department}:{tier}"


def agent(name: str) -> str:
    """Hash: an agent's record (display name, departments, tier, role, capacity, password hash)."""
    return f"{PREFIX}:agent:{name}"


def bot_stats(day: str) -> str:
    """Hash: the bot's counts of one UTC day (YYYY-MM-DD): conversations, answers, handoffs (bot/stats.py)."""
    return f"{PREFIX}:stats:bot:{day}"


def handled(department: str) -> str:
    """List: the latest handling times (seconds) of a department, newest first, capped."""
    return f"{PREFIX}:{TAG}:handled:{department}"


def handoff_record(conversation_id: str) -> str:
    """String: the HandoffRecord JSON an agent reads; under the conversation's own hash tag."""
    return f"conv:{{{conversation_id}}}:handoff"


def handoff_ended(conversation_id: str) -> str:
    """String: the state JSON its last handoff ended in (queue, holder), kept as long as the record: who
    may open a resolved conversation follows where it ended, not where it was first queued."""
    return f"conv:{{{conversation_id}}}:ended"


# ---- handoff service, customer notices and console logins ------------------------------------------
def notes_key(conversation_id: str) -> str:
    """Stream: agents' private notes on a conversation (never in the transcript the customer sees)."""
    return f"conv:{{{conversation_id}}}:notes"


def handoffs_key(conversation_key: str) -> str:
    """Sorted set: the customer's handed-off conversations (id -> ms), for "earlier conversations"."""
    return f"ckey:{{{conversation_key}}}:handoffs"


def wait_key(conversation_id: str) -> str:
    """Hash, one handoff's wait: the first wait told (eta0, told_at) and the apology (apologised_at), the
    agent the customer was last told about (agent), the place and wait they were last shown (shown,
    "place:seconds"), and where and when it was first seen in its current queue (entered_at,
    first_position, first_seen_at)."""
    return f"conv:{{{conversation_id}}}:wait"


# Sorted set: waiting conversation id -> when its wait told runs out or its apology falls due (ms); the
# sweeper revises each then, without the customer having to ask.
WAIT_CHECKS = f"{PREFIX}:{TAG}:wait:checks"


def told_key(conversation_id: str, what: str) -> str:
    """String with a TTL: this notice was given (one worker gives it, whichever saw the event first)."""
    return f"conv:{{{conversation_id}}}:told:{what}"


CONSOLE = "relevo:console"
TOKENS = f"{CONSOLE}:tokens"  # hash: sha256(token) -> agent name


def session_key(session_id: str) -> str:
    """Hash with a TTL: one console login (agent, csrf token); deleted at logout."""
    return f"{CONSOLE}:session:{session_id}"


def agent_sessions_key(name: str) -> str:
    """Set: an agent's session ids, so disabling the agent or a new password can end them all."""
    return f"{CONSOLE}:sessions:{name}"


def failures_key(kind: str, who: str) -> str:
    """String with a TTL: failed logins of one kind ("pair", "name", "ip") and who, in the window."""
    return f"{CONSOLE}:fail:{kind}:{who}"


def lock_key(kind: str, who: str) -> str:
    """String with a TTL: logins of that kind and who are refused (429) while it exists."""
    return f"{CONSOLE}:lock:{kind}:{who}"


def login_pair(name: str | None, address: str | None) -> str:
    """The `who` of a ("pair", who) lockout key: one login name at one client address.

    Both parts are percent-encoded, so neither holds ':' or a SCAN wildcard: a name typed as
    "x:10.0.0.1" cannot pass for another pair, and None (any) gives the SCAN pattern of every pair of
    an address or of a name ("ana:*", "*:10.0.0.1").
    """
    part = ["*" if p is None else quote(p, safe="") for p in (name, address)]
    return f"{part[0]}:{part[1]}"


def ended_session_key(session_id: str) -> str:
    """String with a TTL: whose sign-in a session was, after it was ended (disable, new password), so
    the login page can tell a disabled agent why they were signed out."""
    return f"{CONSOLE}:ended:{session_id}"


# ---- the Telegram channel -------------------------------------------------------------------------
# String with a TTL: this update_id was taken by a worker (Telegram redelivers; workers share a bot).
def update_seen(update_id: int) -> str:
    return f"{PREFIX}:tg:update:{update_id}"


# String with a TTL: the worker that delivers this Telegram chat's messages (every worker hears them).
def delivery_owner(chat_id: int) -> str:
    return f"{PREFIX}:tg:owner:{{{chat_id}}}"


# String with a TTL: the last of this Telegram chat's events its delivering worker was done with (see
# bot.channels.telegram.delivery.event_mark); a worker taking the chat over sends what came after it.
def delivery_mark(chat_id: int) -> str:
    return f"{PREFIX}:tg:mark:{{{chat_id}}}"


# String with a TTL: the Telegram message id of the conversation's one status message (edited in place).
def status_message(conversation_id: str) -> str:
    return f"{PREFIX}:tg:status:{{{conversation_id}}}"


def telegram_shown(conversation_id: str) -> str:
    """Hash with a TTL: what the conversation's chat already shows that a status message would repeat.
    `last`: the chat's newest message of the conversation, when it is a system notice ({"kind": "notice",
    "text"}) or the status message ({"kind": "status", "id", "position", "text"}); `covered`: the status
    text a notice already gave, so no status message was posted for it."""
    return f"{PREFIX}:tg:shown:{{{conversation_id}}}"


# Sorted set: {"event": <event json>, "tries": n} -> when to try again (ms); outgoing messages that
# flood limits or the network held back, kept rather than dropped.
TELEGRAM_PENDING = f"{PREFIX}:tg:pending"


def telegram_parked(chat_id: int) -> str:
    """List: a chat's parked outgoing events, oldest first; TELEGRAM_PENDING holds the chat (its id) with
    when to try. Hash-tagged on TELEGRAM_PENDING's own name, so scripts over both stay on one Cluster slot."""
    return f"{{{TELEGRAM_PENDING}}}:chat:{chat_id}"
