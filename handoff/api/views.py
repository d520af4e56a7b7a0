"""The JSON views of agents, queues, transcripts, handoff records and conversations."""

from __future__ import annotations

import json
from typing import Any

from handoff import audit, keys
from handoff.agents import Agent
from handoff.api.errors import ApiError
from handoff.api.handoffs import ENDS, split_handoffs, summarise
from handoff.conversations import LogEntry
from handoff.queues import HandoffState
from handoff.record import HandoffRecord, load_record
from handoff.service import HandoffService
from handoff.summary import issue

QUEUE_LIMIT = 200
# How far into the audit stream, from an earlier conversation's handoff, its ending is looked for: a
# bounded read per conversation instead of a scan of the whole stream at every open.
EARLIER_AUDIT_WINDOW = 2_000
TRANSCRIPT_LIMIT = 500
AT_RISK_SHARE = 0.25  # the last quarter of a first-reply target counts as "at risk"
# An agent's recent conversations (GET /api/mine/recent): the newest this many, ended within these days,
# found reading the audit stream newest first in pages, never more than RECENT_SCAN_MAX entries (the
# stream can hold a million: a busy desk's week is cut, not read whole at every console start).
RECENT_LIMIT = 20
RECENT_DAYS = 7
RECENT_PAGE = 2_000
RECENT_SCAN_MAX = 20_000
# The audit events that end a holder's part (`from` is the agent who held it): ended, moved on, given
# back, lapsed, taken over by a supervisor ("assigned" from an agent), moved up after an SLA breach.
LEFT_EVENTS = frozenset(ENDS | {"transferred", "escalated", "released", "lease_lapsed", "assigned", "sla_breach"})


def agent_json(agent: Agent, load: int = 0, presence: str = "offline") -> dict[str, Any]:
    return {
        "name": agent.name, "display_name": agent.label, "departments": list(agent.departments),
        "tier": agent.tier, "role": agent.role, "capacity": agent.capacity, "load": load,
        "presence": presence,
    }  # fmt: skip


async def agent_view(service: HandoffService, agent: Agent) -> dict[str, Any]:
    load = await service.queues.load(agent.name)
    return agent_json(agent, load, await service.presence.status(agent.name))


def deadline_of(service: HandoffService, st: HandoffState) -> tuple[int, int]:
    """(first-reply deadline ms, its length ms) of a handoff; 0 when the first reply came, unless the
    customer is waiting again for a person's reply (back in a queue after one: reply_due)."""
    prio = service.rules.priority(st.priority)
    span = prio.first_reply_s * 1000
    if st.reply_due:
        return st.reply_due, span
    return (0 if st.first_reply_at else st.queued_at + span), span


async def queue_items(service: HandoffService, states: list[HandoffState], now: int) -> list[dict[str, Any]]:
    """QueueItem views of handoff states (customer, summary and SLA risk included)."""
    if not states:
        return []
    pipe = service.redis.pipeline(transaction=False)
    for st in states:
        pipe.hmget(keys.conv(st.conversation_id), ["customer", "key"])
        pipe.get(keys.handoff_record(st.conversation_id))
    found = await pipe.execute()
    items = []
    for i, st in enumerate(states):
        customer, key = found[2 * i] or ("", "")
        raw = found[2 * i + 1]
        record = HandoffRecord.from_json(raw) if raw else None
        deadline, span = deadline_of(service, st)
        overdue_s = overdue_of(service, st, now)
        items.append({
            "conversation_id": st.conversation_id, "customer": customer or key or "", "channel": st.channel,
            "lang": st.lang, "waited_s": max(0, (now - st.queued_at) // 1000), "priority": st.priority,
            "department": st.department, "tier": st.tier, "reasons": list(st.reasons),
            "summary": record.summary if record else "", "summary_parts": summary_parts(record) if record else None,
            "sla_at_risk": bool(deadline) and now >= deadline - span * AT_RISK_SHARE,
            # Past a target (the first reply, or the resolution), as the floor's SLA breaches count it.
            "sla_overdue": overdue_s is not None, "overdue_s": overdue_s,
            "state": st.state, "agent": st.agent or None,
        })  # fmt: skip
    return items


def overdue_of(service: HandoffService, st: HandoffState, now: int) -> int | None:
    """Seconds past the first-reply or the resolution target, the later missed one counting; None when
    neither is missed (the floor's SLA breaches, handoff/api/floor.py, say the same)."""
    deadline, _ = deadline_of(service, st)
    resolve_by = st.queued_at + service.rules.priority(st.priority).resolution_s * 1000
    missed = [now - d for d in (deadline, resolve_by) if d and now > d]
    return max(missed) // 1000 if missed else None


async def queue_view(service: HandoffService, department: str, tier: int, now: int) -> dict[str, Any]:
    scored = await service.queues.waiting_scored(department, tier, QUEUE_LIMIT)
    items = await queue_items(service, await service.queues.states([c for c, _ in scored]), now)
    scores = dict(scored)
    for item in items:
        # The queue's own order value (lowest first): "Claim next" takes the lowest across the agent's
        # queues, so a console listing them together sorts by it and shows what it would take first.
        item["order"] = scores.get(item["conversation_id"])
    return {
        "department": department, "tier": tier, "length": await service.queues.length(department, tier),
        "oldest_wait_s": max((i["waited_s"] for i in items), default=0), "items": items,
    }  # fmt: skip


def transcript_item(entry: LogEntry) -> dict[str, Any]:
    return {
        "id": entry.id, "from": entry.sender, "text": entry.text, "ts": entry.ts, "author": entry.author,
        "kind": entry.kind,
        "attachments": [{"kind": a.kind, "caption": a.caption, "ref": a.ref} for a in entry.attachments],
        # What the customer was offered to press ("Did you mean…?" and its suggestions, "Talk to a person").
        "buttons": [b.label for b in entry.buttons],
    }  # fmt: skip


def summary_parts(record: HandoffRecord) -> dict[str, Any]:
    """What the record's summary says, in pieces: a console in another language than the server's English
    sentence says it with its own words around the customer's, which it shows as they are (as
    handoff.summary.build_summary picks them: the first substantive message, the last one)."""
    first, last = issue(record.transcript, record.before)
    return {
        "reasons": [r.to_dict() for r in record.reasons], "mood_score": record.mood_score,
        "mood_words": list(record.mood_words), "wants": first, "last": last,
        "tried": [[c.entry_id, c.score] for c in record.candidates[:2]], "lang": record.lang,
        "channel": record.channel, "messages": sum(1 for ln in record.transcript if ln.sender == "customer"),
        "earlier": len(record.earlier), "before": sum(1 for ln in record.before if ln.sender == "customer"),
    }  # fmt: skip


def record_json(record: HandoffRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {**json.loads(record.to_json()), "summary_parts": summary_parts(record)}


async def may_view(service: HandoffService, agent: Agent, conversation_id: str) -> bool:
    """While handed over: its holder, or while it waits the agents who may take it. Once it ended: who
    held it last and the agents of the queue it ended in, not of the one it was first queued in (an
    escalated or transferred conversation's later notes are not for the first tier or department)."""
    if agent.sees_all:
        return True
    st = await service.queues.state(conversation_id) or await service.queues.ended(conversation_id)
    if st is None:
        return False  # never handed over (or its record is gone): nothing of it is any agent's
    if st.state == "assigned":
        return st.agent == agent.name
    return st.agent == agent.name or agent.may_take(*st.queue)


async def earlier_view(
    service: HandoffService, record: HandoffRecord | None, agent: Agent | None
) -> list[dict[str, Any]]:
    """The customer's earlier conversations that this agent may open, newest first, each with its date,
    queue, reasons and how it ended. One the agent may not open is left out: its id would only lead to a
    refusal (and says nothing to the agent anyway). Without an agent (the supervisor's record view) all."""
    if record is None:
        return []
    ids = [c for c in record.earlier if c and c != record.conversation_id]
    allowed = [c for c in ids if agent is None or await may_view(service, agent, c)]
    if not allowed:
        return []
    records = [await load_record(service.redis, c) for c in allowed]
    found = [r for r in records if r is not None]  # a record past its TTL has nothing to show
    out = []
    for r in found:
        entries = await audit.read(service.redis, start=f"{r.created_at}-0", count=EARLIER_AUDIT_WINDOW,
                                   conversation_id=r.conversation_id)  # fmt: skip
        ending = summarise(r.conversation_id, split_handoffs(entries)[0]) if entries else None
        # Where it ended (transferred to Billing, escalated to tier 2), as the records list shows it: who
        # may read it now, and whom to ask about it.
        department = (ending or {}).get("department") or r.department
        tier = (ending or {}).get("tier") or r.tier
        out.append({
            "conversation_id": r.conversation_id, "ts": r.created_at, "department": department, "tier": tier,
            "reasons": [x.code for x in r.reasons], "outcome": ending["outcome"] if ending else "",
        })  # fmt: skip
    out.sort(key=lambda e: e["ts"], reverse=True)
    return out


async def conversation_view(
    service: HandoffService, conversation_id: str, agent: Agent | None = None
) -> dict[str, Any]:
    """The conversation as `agent` may see it (None: as a supervisor sees it)."""
    conv = await service.conversations.get(conversation_id)
    if conv is None:
        raise ApiError(404, "not_found", "no such conversation")
    st = await service.queues.state(conversation_id)
    record = await load_record(service.redis, conversation_id)
    rating_raw = await service.redis.hmget(
        keys.conv(conversation_id), ["rating", "rating_comment", "email", "unreachable"]
    )
    rating = (
        {"score": int(rating_raw[0]) if rating_raw[0] else None, "comment": rating_raw[1] or ""}
        if rating_raw[0] or rating_raw[1] else None
    )
    log = await service.conversations.log(conversation_id, TRANSCRIPT_LIMIT)
    earlier = await earlier_view(service, record, agent)
    shown = record_json(record)
    if shown is not None:
        shown["earlier"] = [e["conversation_id"] for e in earlier]
        shown["summary_parts"]["earlier"] = len(earlier)
    return {
        "conversation_id": conv.id, "state": conv.state,
        "department": st.department if st else (record.department if record else ""),
        "tier": st.tier if st else (record.tier if record else 0),
        "priority": st.priority if st else (record.priority if record else ""),
        "agent": (st.agent or None) if st else None,
        # Who customers see: an agent's display name (the console says "with Ben", not "with ben").
        "agent_display": await service.display_name(st.agent) if st and st.agent else None,
        "lang": conv.lang, "channel": conv.channel,
        "customer": conv.customer or conv.key, "email": rating_raw[2] or "",
        # The customer blocked the bot (Telegram): replies are stored but cannot reach them.
        "unreachable": bool(rating_raw[3]),
        "record": shown, "earlier": earlier, "transcript": [transcript_item(e) for e in log],
        "notes": await service.notes(conversation_id), "rating": rating,
    }  # fmt: skip


async def recent_view(service: HandoffService, agent: Agent, now: int) -> list[dict[str, Any]]:
    """The conversations whose handoff `agent` held and no longer holds (resolved, returned to the bot,
    transferred, escalated, given back, lapsed, taken over), newest first, one row per conversation (its
    latest), with the customer's rating and comment when one came for the handoff the agent ended."""
    found: dict[str, dict[str, Any]] = {}
    pending: dict[str, list[audit.AuditEntry]] = {}  # ratings seen (newest first), not yet matched to an end
    since = max(0, now - RECENT_DAYS * 86_400_000)
    async for e in audit.newest_first(service.redis, since, RECENT_PAGE, RECENT_SCAN_MAX):
        if e.event == "rated":
            pending.setdefault(e.conversation_id, []).append(e)
            continue
        rated = pending.pop(e.conversation_id, []) if e.event in ENDS or e.event == "queued" else []
        if e.from_ != agent.name or e.event not in LEFT_EVENTS or e.conversation_id in found:
            continue
        stars = next((int(r.outcome) for r in rated if r.outcome.isdigit()), None)
        found[e.conversation_id] = {
            "conversation_id": e.conversation_id, "ended_at": e.ts, "event": e.event,
            "outcome": e.outcome if e.event == "resolved" else "", "to": e.to, "by": e.actor,
            "rating": stars, "comment": next((r.detail for r in rated if r.detail), ""),
        }  # fmt: skip
        if len(found) >= RECENT_LIMIT:
            break
    items = list(found.values())
    if not items:
        return []
    pipe = service.redis.pipeline(transaction=False)
    for item in items:
        pipe.hmget(keys.conv(item["conversation_id"]), ["customer", "key", "channel"])
    customers = await pipe.execute()
    names: dict[str, str] = {}
    for item, (customer, key, channel) in zip(items, customers, strict=True):
        item["customer"] = customer or key or ""
        item["channel"] = channel or ""
        by = item["by"]
        if by not in names:
            names[by] = await service.display_name(by) if by and by not in ("system", "customer") else by
        item["by_display"] = names[by]
        # Resolved, returned or lapsed back to their queue: still theirs to read; transferred or escalated
        # away (another queue), or someone else's now: listed, but not to open (it would be refused).
        item["may_open"] = await may_view(service, agent, item["conversation_id"])
    return items
