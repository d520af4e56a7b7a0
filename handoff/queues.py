"""Handoff queues on Redis: enqueue, claim, auto-assign, leases, give back, transfer, escalate, finish."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis.asyncio as aioredis

from bot.settings import HandoffSettings
from handoff import keys, lua
from handoff.agents import Agent
from handoff.policy import Route
from handoff.presence import now_ms
from handoff.record import RECORD_TTL_S
from handoff.rules import MAX_TIER, HandoffRules

logger = logging.getLogger(__name__)

MOVE_RETRIES = 3
# With ageing switched off (ageing_per_minute = 0) priorities are strict: one point outweighs ~11 days.
STRICT_POINT_MS = 1e9


# A refused move in words: "cannot resolve c1: it is not assigned to you", not "cannot resolved c1:
# not_yours". The action by the audit event the move writes, the reason by the script's status.
ACTIONS = {
    "claimed": "claim", "released": "give back", "transferred": "transfer", "escalated": "escalate",
    "sla_breach": "move up", "lease_lapsed": "requeue", "resolved": "resolve", "returned_to_bot": "return to the bot",
    "abandoned": "close",
}  # fmt: skip
WHY = {
    "not_yours": "it is not assigned to you", "gone": "it is not handed off any more",
    "not_waiting": "it is no longer waiting", "moved": "it keeps moving", "renewed": "its claim was renewed",
    "full": "no room for another conversation",
}  # fmt: skip


def refusal(event: str, conversation_id: str, status: str) -> str:
    """The message of a QueueError(status) for `event` refused by a queue script."""
    return f"cannot {ACTIONS.get(event, event)} {conversation_id}: {WHY.get(status, status)}"


class QueueError(Exception):
    """A queue move was refused; `code` says why (busy, gone, not_yours, moved, full, top ...)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


@dataclass(frozen=True)
class HandoffState:
    """Where one handed-off conversation stands in the queues."""

    conversation_id: str
    state: str  # queued | assigned (| resolved | returned_to_bot once finished)
    department: str
    tier: int
    priority: str
    points: int
    queued_at: int  # ms, when the handoff began (SLA and ageing count from here)
    enqueued_at: int  # ms, when it last entered a queue
    agent: str = ""
    claimed_at: int = 0
    first_reply_at: int = 0
    # ms: a customer a person answered before, back in a queue, waits for the next reply until then (0: not)
    reply_due: int = 0
    reasons: tuple[str, ...] = ()
    lang: str = ""
    channel: str = ""

    @property
    def queue(self) -> tuple[str, int]:
        return self.department, self.tier

    @property
    def queue_name(self) -> str:
        return f"{self.department}:{self.tier}"

    @classmethod
    def from_json(cls, raw: str) -> HandoffState:
        d: dict[str, Any] = json.loads(raw)
        reasons = d.get("reasons") or []
        return cls(
            conversation_id=d["conv"],
            state=d["state"],
            department=d["dept"],
            tier=int(d["tier"]),
            priority=d["prio"],
            points=int(d["points"]),
            queued_at=int(d["queued_at"]),
            enqueued_at=int(d.get("enq_at", d["queued_at"])),
            agent=d.get("agent") or "",
            claimed_at=int(d.get("claimed_at") or 0),
            first_reply_at=int(d.get("first_reply_at") or 0),
            reply_due=int(d.get("reply_due") or 0),
            # An empty Lua table comes back from cjson as {}, not [].
            reasons=tuple(reasons) if isinstance(reasons, list) else (),
            lang=d.get("lang", ""),
            channel=d.get("channel", ""),
        )


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class HandoffQueues:
    """One queue per department and tier, ordered by priority with ageing; every move is one Lua script.

    Score = time entered (ms) - priority points x (60 000 / ageing_per_minute): the lowest score is
    served first. One priority point is worth 1/ageing_per_minute minutes of waiting, so a higher
    priority goes ahead of earlier arrivals, but only up to that many minutes: an old low-priority
    conversation eventually beats a new urgent one, so nothing starves. The trade-off: ageing is
    linear and fixed at enqueue time (scores never need rewriting, each move is O(log n)), so a
    priority change (SLA breach) re-scores explicitly.
    """

    def __init__(self, redis: aioredis.Redis, rules: HandoffRules, settings: HandoffSettings) -> None:
        self.redis = redis
        self.rules = rules
        self.settings = settings
        self.lease_ms = int(settings.claim_lease_s * 1000)
        ageing = settings.ageing_per_minute
        self.point_ms = 60_000 / ageing if ageing > 0 else STRICT_POINT_MS
        self._enqueue = redis.register_script(lua.ENQUEUE)
        self._claim_next = redis.register_script(lua.CLAIM_NEXT)
        self._assign = redis.register_script(lua.ASSIGN)
        self._reassign = redis.register_script(lua.REASSIGN)
        self._renew = redis.register_script(lua.RENEW)
        self._requeue = redis.register_script(lua.REQUEUE)
        self._finish = redis.register_script(lua.FINISH)
        self._first_reply = redis.register_script(lua.FIRST_REPLY)

    # -- reading ---------------------------------------------------------------------------------

    async def state(self, conversation_id: str) -> HandoffState | None:
        raw = await self.redis.hget(keys.STATES, conversation_id)
        return HandoffState.from_json(_str(raw)) if raw else None

    async def states(self, conversation_ids: Sequence[str]) -> list[HandoffState]:
        """The states of those still handed off, in the order given, in one read."""
        if not conversation_ids:
            return []
        raw = await self.redis.hmget(keys.STATES, list(conversation_ids))
        return [HandoffState.from_json(_str(r)) for r in raw if r]

    async def ended(self, conversation_id: str) -> HandoffState | None:
        """The state its last handoff ended in (its queue then, and who held it), or None."""
        raw = await self.redis.get(keys.handoff_ended(conversation_id))
        return HandoffState.from_json(_str(raw)) if raw else None

    async def position(self, conversation_id: str) -> int | None:
        """1-based place in its queue, or None when it is not waiting."""
        st = await self.state(conversation_id)
        if st is None or st.state != "queued":
            return None
        rank = await self.redis.zrank(keys.queue(*st.queue), conversation_id)
        return None if rank is None else int(cast(int, rank)) + 1

    async def waiting(self, department: str, tier: int, limit: int = 1000) -> list[str]:
        """Conversation ids of one queue, next first."""
        return [_str(c) for c in await self.redis.zrange(keys.queue(department, tier), 0, limit - 1)]

    async def waiting_scored(self, department: str, tier: int, limit: int = 1000) -> list[tuple[str, float]]:
        """(conversation id, score) of one queue, next first: the lowest score across queues is claimed next."""
        rows = cast(list[tuple[Any, Any]], await self.redis.zrange(keys.queue(department, tier), 0, limit - 1,
                                                                   withscores=True))
        return [(_str(c), float(score)) for c, score in rows]

    async def length(self, department: str, tier: int) -> int:
        return int(await self.redis.zcard(keys.queue(department, tier)))

    async def assigned_to(self, agent_name: str) -> list[str]:
        prefix = agent_name + keys.SEP
        members = await self.redis.zrangebylex(keys.BY_AGENT, "[" + prefix, "[" + prefix + "\xff")
        return [_str(m)[len(prefix) :] for m in members]

    async def load(self, agent_name: str) -> int:
        return int(await self.redis.zscore(keys.LOAD, agent_name) or 0)

    # -- entering --------------------------------------------------------------------------------

    def _score(self, entered_ms: int, points: int) -> float:
        return entered_ms - points * self.point_ms

    async def enqueue(
        self,
        conversation_id: str,
        route: Route,
        *,
        lang: str = "",
        channel: str = "",
        actor: str = "bot",
        now: int | None = None,
    ) -> int:
        """Queue a handoff where `route` says; its 1-based position. QueueError("busy") if already in."""
        if route.department not in self.rules.departments:
            raise QueueError("unknown_department", f"unknown department '{route.department}'")
        now = now_ms() if now is None else now
        prio = route.priority
        state = {
            "conv": conversation_id,
            "state": "queued",
            "dept": route.department,
            "tier": route.tier,
            "prio": prio.name,
            "points": prio.points,
            "queued_at": now,
            "enq_at": now,
            "agent": "",
            "claimed_at": 0,
            "first_reply_at": 0,
            "reasons": [r.code for r in route.reasons],
            "lang": lang,
            "channel": channel,
        }
        status, value = await self._enqueue(
            keys=[keys.queue(route.department, route.tier), keys.STATES, keys.AUDIT, keys.SLA_REPLY, keys.SLA_RESOLVE],
            args=[
                conversation_id,
                json.dumps(state),
                self._score(now, prio.points),
                now,
                actor,
                now + prio.first_reply_s * 1000,
                now + prio.resolution_s * 1000,
                keys.EVENTS,
                keys.AUDIT_MAXLEN,
            ],
        )
        if _str(status) != "ok":
            raise QueueError("busy", f"conversation {conversation_id} is already {_str(value)}")
        logger.info(
            "handoff %s queued in %s:%d (%s)", conversation_id, route.department, route.tier, prio.name
        )
        return int(value)

    # -- claiming --------------------------------------------------------------------------------

    async def claim_next(self, agent: Agent, now: int | None = None) -> str | None:
        """Manual routing: the agent takes the next conversation of the queues it may take (None if none)."""
        if agent.disabled:
            raise QueueError("disabled", f"agent {agent.name} is disabled")
        now = now_ms() if now is None else now
        queues = [keys.queue(d, t) for d, t in agent.queues(self.rules.queues())]
        status, conv = await self._claim_next(
            keys=[keys.STATES, keys.LEASES, keys.LOAD, keys.BY_AGENT, keys.AUDIT, *queues],
            args=[agent.name, agent.capacity, now, self.lease_ms, keys.EVENTS, keys.AUDIT_MAXLEN],
        )
        if _str(status) == "full":
            raise QueueError("full", f"agent {agent.name} already has {agent.capacity} conversations")
        return _str(conv) if _str(status) == "ok" else None

    async def claim_next_batch(self, agents: Sequence[Agent], now: int | None = None) -> list[str | None]:
        """Several agents' claim_next in one pipelined round trip (each claim still its own atomic script).

        For a gateway that serves many consoles; an agent at capacity gets None.
        """
        now = now_ms() if now is None else now
        pipe = self.redis.pipeline(transaction=False)
        for agent in agents:
            queues = [keys.queue(d, t) for d, t in agent.queues(self.rules.queues())]
            await self._claim_next(
                keys=[keys.STATES, keys.LEASES, keys.LOAD, keys.BY_AGENT, keys.AUDIT, *queues],
                args=[agent.name, agent.capacity, now, self.lease_ms, keys.EVENTS, keys.AUDIT_MAXLEN],
                client=pipe,
            )
        results = await pipe.execute()
        return [_str(conv) if _str(status) == "ok" else None for status, conv in results]

    async def _assign_call(
        self,
        st: HandoffState,
        candidates: Sequence[Agent],
        event: str,
        actor: str,
        online_only: bool,
        now: int,
    ) -> tuple[str, str]:
        pairs: list[Any] = []
        for a in candidates:
            pairs += [a.name, a.capacity]
        status, value = await self._assign(
            keys=[
                keys.queue(*st.queue),
                keys.STATES,
                keys.LEASES,
                keys.LOAD,
                keys.BY_AGENT,
                keys.AUDIT,
                keys.PRESENCE_ONLINE,
            ],
            args=[
                st.conversation_id,
                now,
                self.lease_ms,
                keys.EVENTS,
                keys.AUDIT_MAXLEN,
                st.queue_name,
                event,
                actor,
                "1" if online_only else "0",
                *pairs,
            ],
        )
        return _str(status), _str(value)

    async def claim(self, agent: Agent, conversation_id: str, now: int | None = None) -> None:
        """The agent takes one particular waiting conversation (QueueError: gone, full, not allowed)."""
        now = now_ms() if now is None else now
        for _ in range(MOVE_RETRIES):
            st = await self.state(conversation_id)
            if st is None or st.state != "queued":
                raise QueueError("gone", f"conversation {conversation_id} is not waiting")
            if agent.disabled or not agent.may_take(*st.queue):
                raise QueueError("not_allowed", f"agent {agent.name} does not take queue {st.queue_name}")
            status, _ = await self._assign_call(st, [agent], "claimed", agent.name, False, now)
            if status == "ok":
                return
            if status != "moved":
                raise QueueError(status, refusal("claimed", conversation_id, status))
        raise QueueError("moved", f"conversation {conversation_id} keeps moving")

    async def take_over(self, agent: Agent, st: HandoffState, now: int | None = None) -> None:
        """`agent` takes the conversation `st.agent` holds (QueueError: not_assigned, moved, full)."""
        now = now_ms() if now is None else now
        status, _ = await self._reassign(
            keys=[keys.STATES, keys.LEASES, keys.LOAD, keys.BY_AGENT, keys.AUDIT],
            args=[st.conversation_id, now, self.lease_ms, keys.EVENTS, keys.AUDIT_MAXLEN, st.agent, agent.name,
                  agent.capacity],
        )  # fmt: skip
        if _str(status) != "ok":
            raise QueueError(_str(status), f"cannot take over {st.conversation_id}: {_str(status)}")

    def eligible(self, agents: Sequence[Agent], department: str, tier: int) -> list[Agent]:
        """Automatic-routing candidates: enabled agents of the department at that tier or above.

        Lowest tier first (ties go to them, keeping experts free).

        Supervisors are left out unless the conversation is at the top tier: they watch the queues.
        """
        found = [
            a
            for a in agents
            if not a.disabled
            and a.tier >= tier
            and (department in a.departments or (a.sees_all and tier == MAX_TIER))
        ]
        return sorted(found, key=lambda a: (a.tier, a.name))

    async def assign_auto(
        self, conversation_id: str, agents: Sequence[Agent], now: int | None = None
    ) -> str | None:
        """Automatic routing of one conversation: the least-loaded online eligible agent under capacity."""
        now = now_ms() if now is None else now
        for _ in range(MOVE_RETRIES):
            st = await self.state(conversation_id)
            if st is None or st.state != "queued":
                return None
            candidates = self.eligible(agents, *st.queue)
            if not candidates:
                return None
            status, name = await self._assign_call(st, candidates, "assigned", "router", True, now)
            if status == "ok":
                return name
            if status != "moved":
                return None
        return None

    async def dispatch(
        self, agents: Sequence[Agent], now: int | None = None, limit: int = 1000
    ) -> list[tuple[str, str]]:
        """Automatic routing over every queue: assign heads while someone can take them. [(conv, agent)]."""
        now = now_ms() if now is None else now
        done: list[tuple[str, str]] = []
        for department, tier in self.rules.queues():
            while len(done) < limit:
                head = await self.waiting(department, tier, 1)
                if not head:
                    break
                agent = await self.assign_auto(head[0], agents, now)
                if agent is None:
                    break
                done.append((head[0], agent))
        return done

    async def renew(self, agent_name: str, conversation_id: str = "", now: int | None = None) -> int:
        """Renew the agent's claim leases (one conversation, or all); its connection calls this."""
        now = now_ms() if now is None else now
        return int(
            await self._renew(
                keys=[keys.BY_AGENT, keys.LEASES], args=[agent_name, now + self.lease_ms, conversation_id]
            )
        )

    async def first_reply(self, agent_name: str, conversation_id: str, now: int | None = None) -> bool:
        now = now_ms() if now is None else now
        return bool(
            await self._first_reply(keys=[keys.STATES, keys.SLA_REPLY], args=[conversation_id, agent_name, now])
        )

    # -- moving ----------------------------------------------------------------------------------

    @staticmethod
    def _holder(agent: Agent | None) -> str:
        # Supervisors (and the system, agent=None) may move a conversation someone else holds.
        return "" if agent is None or agent.sees_all else agent.name

    async def _move(
        self,
        conversation_id: str,
        actor: Agent | None,
        event: str,
        *,
        department: str | None = None,
        tier: int | None = None,
        priority: str | None = None,
        front: bool = False,
        only: str = "",
        reason: str = "",
        detail: str = "",
        new_deadline: bool = False,
        elsewhere: bool = False,
        now: int | None = None,
    ) -> int:
        now = now_ms() if now is None else now
        for _ in range(MOVE_RETRIES):
            st = await self.state(conversation_id)
            if st is None:
                raise QueueError("gone", f"conversation {conversation_id} is not handed off")
            dept, to_tier = department or st.department, tier or st.tier
            if elsewhere and (dept, to_tier) == st.queue:
                # Checked against the state the script is given: it refuses ("moved") if that changed.
                raise QueueError(
                    "same_department", f"conversation {conversation_id} is already in the {dept} department"
                )
            prio = self.rules.priority(priority or st.priority)
            deadline = now + prio.first_reply_s * 1000 if new_deadline else ""
            waiting_again = now + prio.first_reply_s * 1000
            status, pos = await self._requeue(
                keys=[
                    keys.queue(*st.queue),
                    keys.queue(dept, to_tier),
                    keys.STATES,
                    keys.LEASES,
                    keys.LOAD,
                    keys.BY_AGENT,
                    keys.AUDIT,
                    keys.SLA_REPLY,
                ],
                args=[
                    conversation_id,
                    actor.name if actor else "system",
                    now,
                    event,
                    self._holder(actor),
                    st.queue_name,
                    dept,
                    to_tier,
                    prio.name,
                    prio.points,
                    "1" if front else "0",
                    self.point_ms,
                    only,
                    deadline,
                    reason,
                    detail[:500],
                    keys.EVENTS,
                    keys.AUDIT_MAXLEN,
                    waiting_again,
                ],
            )
            status = _str(status)
            if status == "ok":
                return int(pos)
            if status != "moved":
                raise QueueError(status, refusal(event, conversation_id, status))
        raise QueueError("moved", f"conversation {conversation_id} keeps moving")

    async def release(self, agent: Agent, conversation_id: str, now: int | None = None) -> int:
        """Give the conversation back: to the FRONT of its queue. Returns its position (1)."""
        return await self._move(conversation_id, agent, "released", front=True, now=now)

    async def release_all(self, agent: Agent, now: int | None = None) -> list[str]:
        """Give back everything the agent holds (they were disabled): the ids given back."""
        given = []
        for conv in await self._last_first(await self.assigned_to(agent.name)):
            try:
                await self.release(agent, conv, now=now)
                given.append(conv)
            except QueueError as exc:  # resolved, taken over or lapsed meanwhile: not theirs to give
                logger.info("%s not given back for %s: %s", conv, agent.name, exc)
        return given

    async def _last_first(self, conversation_ids: list[str]) -> list[str]:
        """Conversations going back to the front together, in the order to move them: each goes ahead of
        the queue's head, so the one that should come first among them (the highest priority, then the
        oldest, as the queue orders them) goes back last."""
        score = {st.conversation_id: self._score(st.queued_at, st.points) for st in await self.states(conversation_ids)}
        return sorted(conversation_ids, key=lambda c: -score.get(c, 0))

    async def transfer(
        self,
        agent: Agent,
        conversation_id: str,
        department: str,
        tier: int | None = None,
        note: str = "",
        now: int | None = None,
    ) -> int:
        """Functional escalation: to another department (same tier unless given); waiting time kept.

        QueueError same_department when that is the queue it is in already (the customer would be told
        they are passed on, and go back to the same queue)."""
        if department not in self.rules.departments:
            raise QueueError("unknown_department", f"unknown department '{department}'")
        if tier is not None and not 1 <= tier <= MAX_TIER:
            raise QueueError("bad_tier", f"tier must be 1 to {MAX_TIER}")
        return await self._move(
            conversation_id, agent, "transferred", department=department, tier=tier, detail=note, elsewhere=True,
            now=now,
        )

    async def escalate(
        self,
        agent: Agent | None,
        conversation_id: str,
        tier: int | None = None,
        note: str = "",
        now: int | None = None,
    ) -> int:
        """Hierarchical escalation: to a higher tier of the same department (next one unless given)."""
        st = await self.state(conversation_id)
        if st is None:
            raise QueueError("gone", f"conversation {conversation_id} is not handed off")
        target = tier if tier is not None else st.tier + 1
        if target > MAX_TIER or target <= st.tier:
            raise QueueError(
                "top", f"conversation {conversation_id} is at tier {st.tier}; cannot escalate to {target}"
            )
        return await self._move(conversation_id, agent, "escalated", tier=target, detail=note, now=now)

    async def breach(self, conversation_id: str, overdue_s: float, now: int | None = None) -> int:
        """A wait broke its first-reply SLA: one priority level up, one tier up (if any), new deadline."""
        st = await self.state(conversation_id)
        if st is None or st.state != "queued":
            raise QueueError("gone", f"conversation {conversation_id} is not waiting")
        return await self._move(
            conversation_id, None, "sla_breach", tier=min(st.tier + 1, MAX_TIER),
            priority=self.rules.raised(st.priority).name, only="queued",
            reason="" if "sla_breach" in st.reasons else "sla_breach",  # one badge, however many breaches
            detail=f"first reply overdue by {overdue_s:.0f}s", new_deadline=True, now=now,
        )  # fmt: skip

    async def expire_leases(self, now: int | None = None, limit: int = 100) -> list[str]:
        """Conversations whose claim lease lapsed go back to the FRONT of their queue (event lease_lapsed)."""
        now = now_ms() if now is None else now
        lapsed = [_str(c) for c in await self.redis.zrangebyscore(keys.LEASES, "-inf", now, start=0, num=limit)]
        requeued = []
        for conv in await self._last_first(lapsed):
            try:
                await self._move(conv, None, "lease_lapsed", front=True, only="lapsed", now=now)
                requeued.append(conv)
            except QueueError as exc:
                if exc.code == "gone":
                    # A lease without a state (should not happen): drop it so it is not retried forever.
                    await self.redis.zrem(keys.LEASES, conv)
                elif exc.code != "renewed":
                    logger.warning("lease of %s not requeued: %s", conv, exc)
        if requeued:
            logger.info("claim leases lapsed, requeued: %s", ", ".join(requeued))
        return requeued

    # -- finishing -------------------------------------------------------------------------------

    async def _end(
        self, agent: Agent | None, conversation_id: str, event: str, outcome: str, now: int | None,
        only_waiting: bool = False, note: str = "",
    ) -> HandoffState:
        now = now_ms() if now is None else now
        for _ in range(MOVE_RETRIES):
            st = await self.state(conversation_id)
            if st is None:
                raise QueueError("gone", f"conversation {conversation_id} is not handed off")
            status, raw = await self._finish(
                keys=[
                    keys.queue(*st.queue),
                    keys.STATES,
                    keys.LEASES,
                    keys.LOAD,
                    keys.BY_AGENT,
                    keys.AUDIT,
                    keys.SLA_REPLY,
                    keys.SLA_RESOLVE,
                    keys.handoff_ended(conversation_id),
                ],
                args=[
                    conversation_id,
                    agent.name if agent else "system",
                    "-" if only_waiting else self._holder(agent),
                    now,
                    event,
                    outcome[:200],
                    st.queue_name,
                    keys.EVENTS,
                    keys.AUDIT_MAXLEN,
                    note,
                    RECORD_TTL_S * 1000,
                ],
            )
            status = _str(status)
            if status == "ok":
                final = HandoffState.from_json(_str(raw))
                if final.claimed_at and event == "resolved":
                    await self._record_handling(final.department, (now - final.claimed_at) / 1000)
                return final
            if status != "moved":
                raise QueueError(status, refusal(event, conversation_id, status))
        raise QueueError("moved", f"conversation {conversation_id} keeps moving")

    async def _record_handling(self, department: str, seconds: float) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.lpush(keys.handled(department), round(seconds, 1))
        pipe.ltrim(keys.handled(department), 0, keys.HANDLED_KEEP - 1)
        await pipe.execute()

    async def resolve(
        self, agent: Agent | None, conversation_id: str, outcome: str, now: int | None = None, note: str = ""
    ) -> HandoffState:
        """Close the handoff with an outcome (e.g. "solved", "refund") and the agent's note on it, which the
        record's timeline shows as transfer and escalation notes; records the handling time."""
        if not outcome.strip():
            raise QueueError("no_outcome", "a resolution needs an outcome")
        return await self._end(agent, conversation_id, "resolved", outcome.strip(), now, note=note)

    async def return_to_bot(
        self, agent: Agent | None, conversation_id: str, now: int | None = None
    ) -> HandoffState:
        """The agent hands the conversation back to the bot."""
        return await self._end(agent, conversation_id, "returned_to_bot", "", now)

    async def abandon(
        self, conversation_id: str, now: int | None = None, only_waiting: bool = False
    ) -> HandoffState:
        """The customer left (conversation closed) while waiting or being served; `only_waiting`: refused
        (QueueError not_waiting) once an agent has it."""
        return await self._end(None, conversation_id, "abandoned", "customer left", now, only_waiting)
