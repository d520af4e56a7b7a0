"""The atomic queue moves as Lua scripts: enqueue, claim, renew, requeue/transfer/escalate, finish."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

# Shared by every script. A conversation's handoff state is a JSON object in the STATES hash:
# conv, state (queued|assigned), dept, tier, prio, points, queued_at, enq_at, agent, claimed_at,
# first_reply_at, reasons (codes), lang, channel. Time always comes from ARGV (the caller's clock in
# ms), so scripts stay deterministic and tests can move time.
_PRELUDE = """
local function load_state(states, conv)
  local raw = redis.call('HGET', states, conv)
  if not raw then return nil end
  return cjson.decode(raw)
end
local function qname(s) return s.dept .. ':' .. tostring(s.tier) end
local function audit(key, maxlen, now, conv, event, actor, from, to, reasons, outcome, detail)
  redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*', 'ts', now, 'conv', conv, 'event', event,
    'actor', actor, 'from', from, 'to', to, 'reasons', reasons, 'outcome', outcome, 'detail', detail)
end
local function publish(channel, event, s, actor, from, to, now, outcome)
  redis.call('PUBLISH', channel, cjson.encode({event = event, conv = s.conv, state = s.state, actor = actor,
    from = from, to = to, agent = s.agent, department = s.dept, tier = s.tier, priority = s.prio, ts = now,
    outcome = outcome}))
end
local function codes(s) return table.concat(s.reasons or {}, ',') end
local function unassign(s, conv, leases, load, by_agent)
  redis.call('ZREM', leases, conv)
  if tonumber(redis.call('ZINCRBY', load, -1, s.agent)) <= 0 then redis.call('ZREM', load, s.agent) end
  redis.call('ZREM', by_agent, s.agent .. '|' .. conv)
  s.agent = ''
end
local function assign(s, conv, agent, now, lease_ms, leases, load, by_agent)
  s.state = 'assigned'
  s.agent = agent
  s.claimed_at = now
  redis.call('ZADD', leases, now + lease_ms, conv)
  redis.call('ZINCRBY', load, 1, agent)
  redis.call('ZADD', by_agent, 0, agent .. '|' .. conv)
end
"""

ENQUEUE = (
    """
-- Put a conversation in a queue (a new handoff).
-- KEYS[1] queue, KEYS[2] states, KEYS[3] audit, KEYS[4] sla reply deadlines, KEYS[5] sla resolve deadlines
-- ARGV[1] conversation id, ARGV[2] state JSON, ARGV[3] score, ARGV[4] now ms, ARGV[5] actor,
-- ARGV[6] first-reply deadline ms, ARGV[7] resolution deadline ms, ARGV[8] events channel,
-- ARGV[9] audit maxlen
-- Returns {"ok", position} (1-based), or {"busy", state} when it is already queued or assigned.
"""
    + _PRELUDE
    + """
local conv = ARGV[1]
local old = load_state(KEYS[2], conv)
if old then return {'busy', old.state} end
local s = cjson.decode(ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], conv)
redis.call('HSET', KEYS[2], conv, cjson.encode(s))
redis.call('ZADD', KEYS[4], ARGV[6], conv)
redis.call('ZADD', KEYS[5], ARGV[7], conv)
local now = tonumber(ARGV[4])
audit(KEYS[3], ARGV[9], now, conv, 'queued', ARGV[5], 'bot', qname(s), codes(s), '', s.prio)
publish(ARGV[8], 'queued', s, ARGV[5], 'bot', qname(s), now)
return {'ok', redis.call('ZRANK', KEYS[1], conv) + 1}
"""
)

CLAIM_NEXT = (
    """
-- An agent claims the first conversation (lowest score) across the queues it may take.
-- KEYS[1] states, KEYS[2] leases, KEYS[3] load, KEYS[4] by agent, KEYS[5] audit, KEYS[6..] queues
-- ARGV[1] agent, ARGV[2] capacity, ARGV[3] now ms, ARGV[4] lease ms, ARGV[5] events channel,
-- ARGV[6] audit maxlen
-- Returns {"ok", conversation id}, {"empty", ""} or {"full", ""} (the agent is at capacity).
"""
    + _PRELUDE
    + """
local agent = ARGV[1]
local load = tonumber(redis.call('ZSCORE', KEYS[3], agent) or '0')
if load >= tonumber(ARGV[2]) then return {'full', ''} end
local best_key, best_conv, best_score = nil, nil, nil
for i = 6, #KEYS do
  local head = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
  if head[1] and (best_score == nil or tonumber(head[2]) < best_score) then
    best_key, best_conv, best_score = KEYS[i], head[1], tonumber(head[2])
  end
end
if not best_key then return {'empty', ''} end
redis.call('ZREM', best_key, best_conv)
local s = load_state(KEYS[1], best_conv)
local now = tonumber(ARGV[3])
assign(s, best_conv, agent, now, tonumber(ARGV[4]), KEYS[2], KEYS[3], KEYS[4])
redis.call('HSET', KEYS[1], best_conv, cjson.encode(s))
audit(KEYS[5], ARGV[6], now, best_conv, 'claimed', agent, qname(s), agent, codes(s), '', '')
publish(ARGV[5], 'claimed', s, agent, qname(s), agent, now)
return {'ok', best_conv}
"""
)

ASSIGN = (
    """
-- Give one queued conversation to an agent: a claim of that conversation (one candidate) or
-- automatic routing (several candidates: the least loaded one that is online and under capacity).
-- KEYS[1] queue, KEYS[2] states, KEYS[3] leases, KEYS[4] load, KEYS[5] by agent, KEYS[6] audit,
-- KEYS[7] online presence (agent -> expiry ms)
-- ARGV[1] conversation id, ARGV[2] now ms, ARGV[3] lease ms, ARGV[4] events channel, ARGV[5] audit maxlen,
-- ARGV[6] expected queue "dept:tier", ARGV[7] event (claimed|assigned), ARGV[8] actor,
-- ARGV[9] "1" = candidates must be online, ARGV[10..] pairs of agent name, capacity (preferred first on ties)
-- Returns {"ok", agent}, {"gone", ""} (not queued), {"moved", ""} (in another queue now), {"full", ""}.
"""
    + _PRELUDE
    + """
local conv = ARGV[1]
local now = tonumber(ARGV[2])
local s = load_state(KEYS[2], conv)
if not s or s.state ~= 'queued' then return {'gone', ''} end
if qname(s) ~= ARGV[6] then return {'moved', ''} end
local chosen, chosen_load = nil, nil
for i = 10, #ARGV, 2 do
  local name, cap = ARGV[i], tonumber(ARGV[i + 1])
  local load = tonumber(redis.call('ZSCORE', KEYS[4], name) or '0')
  local alive = ARGV[9] ~= '1' or tonumber(redis.call('ZSCORE', KEYS[7], name) or '0') > now
  if alive and load < cap and (chosen_load == nil or load < chosen_load) then
    chosen, chosen_load = name, load
  end
end
if not chosen then return {'full', ''} end
redis.call('ZREM', KEYS[1], conv)
assign(s, conv, chosen, now, tonumber(ARGV[3]), KEYS[3], KEYS[4], KEYS[5])
redis.call('HSET', KEYS[2], conv, cjson.encode(s))
audit(KEYS[6], ARGV[5], now, conv, ARGV[7], ARGV[8], qname(s), chosen, codes(s), '', '')
publish(ARGV[4], ARGV[7], s, ARGV[8], qname(s), chosen, now)
return {'ok', chosen}
"""
)

REASSIGN = (
    """
-- A supervisor takes a conversation another agent holds, in one step: nobody else can claim it in
-- between, and the customer hears only who joined (the event is "assigned", as automatic routing's).
-- KEYS[1] states, KEYS[2] leases, KEYS[3] load, KEYS[4] by agent, KEYS[5] audit
-- ARGV[1] conversation id, ARGV[2] now ms, ARGV[3] lease ms, ARGV[4] events channel, ARGV[5] audit maxlen,
-- ARGV[6] the agent who holds it now, ARGV[7] the one taking it, ARGV[8] the latter's capacity
-- Returns {"ok", agent}, {"not_assigned", ""}, {"moved", ""} (someone else holds it now), {"full", ""}.
"""
    + _PRELUDE
    + """
local conv = ARGV[1]
local now = tonumber(ARGV[2])
local s = load_state(KEYS[1], conv)
if not s or s.state ~= 'assigned' then return {'not_assigned', ''} end
if s.agent ~= ARGV[6] then return {'moved', ''} end
if tonumber(redis.call('ZSCORE', KEYS[3], ARGV[7]) or '0') >= tonumber(ARGV[8]) then return {'full', ''} end
local from = s.agent
unassign(s, conv, KEYS[2], KEYS[3], KEYS[4])
assign(s, conv, ARGV[7], now, tonumber(ARGV[3]), KEYS[2], KEYS[3], KEYS[4])
redis.call('HSET', KEYS[1], conv, cjson.encode(s))
audit(KEYS[5], ARGV[5], now, conv, 'assigned', ARGV[7], from, ARGV[7], codes(s), '', 'taken over')
publish(ARGV[4], 'assigned', s, ARGV[7], from, ARGV[7], now)
return {'ok', ARGV[7]}
"""
)

RENEW = (
    """
-- Renew the claim leases of one agent (all its conversations, or one).
-- KEYS[1] by agent, KEYS[2] leases
-- ARGV[1] agent, ARGV[2] new expiry ms, ARGV[3] conversation id or "" for all
-- Returns the number of leases renewed (a lease that already lapsed and was requeued is not revived).
"""
    + """
local convs
if ARGV[3] ~= '' then
  if redis.call('ZSCORE', KEYS[1], ARGV[1] .. '|' .. ARGV[3]) then convs = {ARGV[3]} else convs = {} end
else
  convs = {}
  local prefix = ARGV[1] .. '|'
  for _, m in ipairs(redis.call('ZRANGEBYLEX', KEYS[1], '[' .. prefix, '[' .. prefix .. '\\255')) do
    convs[#convs + 1] = string.sub(m, #prefix + 1)
  end
end
local n = 0
for _, conv in ipairs(convs) do n = n + redis.call('ZADD', KEYS[2], 'XX', 'CH', ARGV[2], conv) end
return n
"""
)

REQUEUE = (
    """
-- Move a conversation into a queue: give back, lease lapse, transfer, escalation, SLA breach.
-- KEYS[1] current queue, KEYS[2] target queue, KEYS[3] states, KEYS[4] leases, KEYS[5] load,
-- KEYS[6] by agent, KEYS[7] audit, KEYS[8] sla reply deadlines
-- ARGV[1] conversation id, ARGV[2] actor, ARGV[3] now ms, ARGV[4] event, ARGV[5] agent who must hold it
-- ("" = anyone: a supervisor or the system), ARGV[6] expected current queue "dept:tier",
-- ARGV[7] target department, ARGV[8] target tier, ARGV[9] priority name, ARGV[10] points,
-- ARGV[11] "1" = to the front of the target queue, ARGV[12] ms of waiting one point is worth,
-- ARGV[13] "lapsed" = only if assigned and its lease lapsed, "queued" = only if waiting,
-- "" = either, ARGV[14] new first-reply deadline ms or "",
-- ARGV[15] reason code to add or "", ARGV[16] detail for the audit, ARGV[17] events channel, ARGV[18] maxlen,
-- ARGV[19] the deadline of a customer waiting again: one a person has answered before is back in a queue
-- (given back, lapsed, transferred, escalated) and waits for the next person's reply against this (its
-- priority's first-reply time from now), kept in the state as reply_due until that reply
-- Returns {"ok", position}, or {"gone"|"not_yours"|"moved"|"renewed", 0}.
"""
    + _PRELUDE
    + """
local conv = ARGV[1]
local now = tonumber(ARGV[3])
local s = load_state(KEYS[3], conv)
if not s then return {'gone', 0} end
if ARGV[5] ~= '' and (s.state ~= 'assigned' or s.agent ~= ARGV[5]) then return {'not_yours', 0} end
if qname(s) ~= ARGV[6] then return {'moved', 0} end
if ARGV[13] == 'queued' and s.state ~= 'queued' then return {'gone', 0} end
if ARGV[13] == 'lapsed' then
  if s.state ~= 'assigned' then return {'gone', 0} end
  local expiry = redis.call('ZSCORE', KEYS[4], conv)
  if expiry and tonumber(expiry) > now then return {'renewed', 0} end
end
local from = qname(s)
if s.state == 'assigned' then
  from = s.agent
  unassign(s, conv, KEYS[4], KEYS[5], KEYS[6])
else
  redis.call('ZREM', KEYS[1], conv)
end
s.dept, s.tier, s.prio, s.points = ARGV[7], tonumber(ARGV[8]), ARGV[9], tonumber(ARGV[10])
local score = s.queued_at - s.points * tonumber(ARGV[12])
if ARGV[11] == '1' then
  local head = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if head[1] and tonumber(head[2]) - 1 < score then score = tonumber(head[2]) - 1 end
end
redis.call('ZADD', KEYS[2], score, conv)
s.state, s.enq_at = 'queued', now
local due = ARGV[14]
if due == '' and (s.first_reply_at or 0) > 0 and (s.reply_due or 0) == 0 then due = ARGV[19] or '' end
if due ~= '' then
  redis.call('ZADD', KEYS[8], due, conv)
  if (s.first_reply_at or 0) > 0 then s.reply_due = tonumber(due) end
end
if ARGV[15] ~= '' then s.reasons[#s.reasons + 1] = ARGV[15] end
redis.call('HSET', KEYS[3], conv, cjson.encode(s))
audit(KEYS[7], ARGV[18], now, conv, ARGV[4], ARGV[2], from, qname(s), codes(s), '', ARGV[16])
publish(ARGV[17], ARGV[4], s, ARGV[2], from, qname(s), now)
return {'ok', redis.call('ZRANK', KEYS[2], conv) + 1}
"""
)

FINISH = (
    """
-- End a handoff: resolved with an outcome, or given back to the bot. The state is removed.
-- KEYS[1] current queue, KEYS[2] states, KEYS[3] leases, KEYS[4] load, KEYS[5] by agent, KEYS[6] audit,
-- KEYS[7] sla reply deadlines, KEYS[8] sla resolve deadlines, KEYS[9] the conversation's ended state
-- ARGV[1] conversation id, ARGV[2] actor, ARGV[3] agent who must hold it ("" = anyone, "-" = only while
-- nobody holds it: still waiting), ARGV[4] now ms, ARGV[5] event (resolved|returned_to_bot|abandoned),
-- ARGV[6] outcome, ARGV[7] expected queue "dept:tier",
-- ARGV[8] events channel, ARGV[9] audit maxlen, ARGV[10] the agent's note on it (the audit entry's detail),
-- ARGV[11] how long the ended state is kept (ms)
-- The published event carries the outcome (a resolution's rating prompt depends on it).
-- Returns {"ok", last state JSON}, or {"gone"|"not_yours"|"not_waiting"|"moved", ""}.
"""
    + _PRELUDE
    + """
local conv = ARGV[1]
local now = tonumber(ARGV[4])
local s = load_state(KEYS[2], conv)
if not s then return {'gone', ''} end
if ARGV[3] == '-' then
  if s.state ~= 'queued' then return {'not_waiting', ''} end
elseif ARGV[3] ~= '' and (s.state ~= 'assigned' or s.agent ~= ARGV[3]) then return {'not_yours', ''} end
if qname(s) ~= ARGV[7] then return {'moved', ''} end
local from = qname(s)
local agent = s.agent
if s.state == 'assigned' then
  from = s.agent
  unassign(s, conv, KEYS[3], KEYS[4], KEYS[5])
else
  redis.call('ZREM', KEYS[1], conv)
end
redis.call('HDEL', KEYS[2], conv)
redis.call('ZREM', KEYS[7], conv)
redis.call('ZREM', KEYS[8], conv)
s.state = ARGV[5]
s.agent = agent
local to = 'closed'
if ARGV[5] == 'returned_to_bot' then to = 'bot' end
audit(KEYS[6], ARGV[9], now, conv, ARGV[5], ARGV[2], from, to, codes(s), ARGV[6], ARGV[10] or '')
publish(ARGV[8], ARGV[5], s, ARGV[2], from, to, now, ARGV[6])
local ended = cjson.encode(s)
redis.call('SET', KEYS[9], ended, 'PX', ARGV[11])
return {'ok', ended}
"""
)

FIRST_REPLY = (
    """
-- Note the agent's first reply (stops the first-reply SLA timer), or the first reply to a customer
-- waiting again (stops that one: reply_due).
-- KEYS[1] states, KEYS[2] sla reply deadlines
-- ARGV[1] conversation id, ARGV[2] agent, ARGV[3] now ms
-- Returns 1 when this was the first reply, else 0.
"""
    + _PRELUDE
    + """
local s = load_state(KEYS[1], ARGV[1])
if not s or s.state ~= 'assigned' or s.agent ~= ARGV[2] then return 0 end
if (s.first_reply_at or 0) > 0 then
  if (s.reply_due or 0) > 0 then
    s.reply_due = 0
    redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(s))
    redis.call('ZREM', KEYS[2], ARGV[1])
  end
  return 0
end
s.first_reply_at = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(s))
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""
)

RENEW_LEASE = (
    """
-- Take or keep a once-only worker lease (SET NX PX, or extend it if this worker holds it).
-- KEYS[1] lease key
-- ARGV[1] worker token, ARGV[2] lease ms
-- Returns 1 when the caller holds the lease now, else 0.
"""
    + """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
"""
)

RELEASE_LEASE = (
    """
-- Drop a worker lease if this worker holds it.
-- KEYS[1] lease key
-- ARGV[1] worker token
-- Returns 1 when it was dropped.
"""
    + """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
)
