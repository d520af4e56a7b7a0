"""The handoff wired to the conversations: escalate into the queues, agent actions, customer notices."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Coroutine, Sequence
from typing import Any, Protocol, cast

import redis.asyncio as aioredis

from bot.messages import HELPFUL_NO, Channel, Outbound, StatusUpdate
from bot.outbox import Outbox
from bot.settings import Settings
from faq.model import Entry, KnowledgeBase
from handoff import audit, keys, policy
from handoff import escalation as esc
from handoff.agents import Agent, AgentDirectory
from handoff.conversations import RATING_KIND, Conversation, Conversations, LogEntry, entry_fields, now_ms
from handoff.estimate import WaitEstimator
from handoff.keys import handoffs_key, notes_key
from handoff.notify import RATING_BUTTONS, CustomerNotifier, find_almost_email, find_email, say
from handoff.presence import Presence
from handoff.queues import HandoffQueues, HandoffState, QueueError
from handoff.record import (
    MAX_BEFORE_LINES,
    MAX_LINES,
    CandidateScore,
    build_record,
    load_record,
    save_record,
    with_line,
)
from handoff.rules import MAX_TIER, HandoffRules, rules_of
from handoff.sla import Sweeper
from handoff.summary import Line, since_a_person

logger = logging.getLogger(__name__)

OUTCOMES = ("solved", "not_solved", "duplicate", "spam", "other")
AGENTS_CACHE_S = 5.0
NOTE_MAXLEN = 1000
EARLIER_KEEP = 20
# A conversation with the bot alone that ended this long before a handoff is still "what they said before"
# (an idle close is 30 minutes by default; a customer may come back the next day about the same thing).
BEFORE_WINDOW_S = 24 * 3600
STOP_TIMEOUT_S = 5.0


class Knowledge(Protocol):
    """What the service needs of faq.library.Library."""

    @property
    def kb(self) -> KnowledgeBase: ...

    def health(self) -> dict[str, object]: ...


def to_policy(reason: esc.Reason | policy.Reason) -> policy.Reason | None:
    try:
        return policy.Reason(reason.code, reason.detail, tuple(reason.evidence))
    except ValueError:
        logger.warning("handoff: unknown reason code %r dropped", reason.code)
        return None


def lines_of(log: Sequence[LogEntry]) -> list[Line]:
    """The transcript as the summary reads it: each customer message marked `answered` when the bot's
    next turn answered it from the knowledge base and the customer did not say it did not help."""
    lines = []
    for i, e in enumerate(log):
        if not e.text:
            continue
        answered = False
        if e.sender == "customer":
            reply = next((r for r in log[i + 1 :] if r.sender != "customer"), None)
            after = next((r for r in log[i + 1 :] if r.sender == "customer"), None)
            turned_down = after is not None and after.value == HELPFUL_NO
            answered = reply is not None and (reply.decision or {}).get("action") == "answer" and not turned_down
        lines.append(Line(e.sender, e.text, e.ends_handoff, answered))
    return lines


def candidates_from(log: Sequence[LogEntry], given: Sequence[dict[str, Any]]) -> list[CandidateScore]:
    """The FAQ candidates the bot considered: the escalation's own, else the latest stored decision's since
    a person last had the conversation (an earlier handoff's are about what was solved then)."""
    rows: Sequence[Any] = given
    if not rows:
        for entry in reversed(log[since_a_person(log) :]):
            found = (entry.decision or {}).get("candidates")
            if found:
                rows = found
                break
    out = []
    for row in rows[:5]:
        if isinstance(row, dict) and row.get("entry_id"):
            out.append(CandidateScore(str(row["entry_id"]), float(row.get("score") or 0.0),
                                      str(row.get("question") or "")))
    return out


class HandoffService:
    """Owns the queues, agents, presence, SLA sweeper and wait estimates; implements `Escalator`."""

    def __init__(
        self,
        settings: Settings,
        redis: aioredis.Redis,
        conversations: Conversations,
        outbox: Outbox,
        library: Knowledge,
        rules: HandoffRules | None = None,
    ) -> None:
        hs = settings.handoff
        self.settings = settings
        self.redis = redis
        self.conversations = conversations
        self.outbox = outbox
        self.library = library
        self.rules = rules or rules_of(settings)
        self.queues = HandoffQueues(redis, self.rules, hs)
        self.directory = AgentDirectory(redis)
        self.presence = Presence(redis, hs.presence_ttl_s)
        self.estimator = WaitEstimator(redis, self.queues, self.presence, self.rules)
        self.recorder = esc.RecordingEscalator(redis, write_audit=False)
        self.notifier = CustomerNotifier(
            redis, conversations, outbox, self.queues, self.estimator, self.rules, self.agent_list,
            self.display_name,
        )  # fmt: skip
        # The sweep also revises the waits that have run out (and says the apology), without a nudge.
        self.sweeper = Sweeper(redis, self.queues, self.agent_list, notices=self.notifier.check_waits)
        self._agents: tuple[float, list[Agent]] = (0.0, [])
        self._labels: dict[str, str] = {}
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the SLA/lease sweeper and the customer-notice listener."""
        self._stop.clear()
        self._spawn(self.sweeper.run(self._stop), "handoff-sweeper")
        self._spawn(self.notifier.run(self._stop), "handoff-notices")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(_report)
        self._tasks.append(task)

    async def close(self) -> None:
        self._stop.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT_S)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        self._tasks.clear()
        await self.notifier.close()

    # -- agents ----------------------------------------------------------------------------------

    async def agent_list(self) -> list[Agent]:
        """Every agent, cached a few seconds (the estimator and the router read it often)."""
        at, cached = self._agents
        if time.monotonic() - at < AGENTS_CACHE_S:
            return cached
        found = await self.directory.all()
        self._agents = (time.monotonic(), found)
        self._labels = {a.name: a.label for a in found}
        return found

    def forget_agents(self) -> None:
        self._agents = (0.0, [])

    def known_label(self, name: str) -> str | None:
        """The display name of an agent as last read (None if not read yet), without waiting: for frames
        sent as events arrive. Display names seldom change; the next read catches up."""
        return self._labels.get(name)

    async def display_name(self, name: str) -> str:
        agent = await self.directory.get(name)
        return agent.label if agent else name

    # -- the bot's side: escalate ----------------------------------------------------------------

    def person_words(self, text: str, lang: str | None) -> tuple[str, ...]:
        """The words of the rules file's person_phrases the text has (the admin's own ways of asking)."""
        found = policy.person_request(text, lang, self.rules)
        return found.evidence if found else ()

    def extra_reasons(self, text: str, lang: str | None) -> list[esc.Reason]:
        """Keyword-rule reasons (legal threats, cancellations ...) the engine adds to its own."""
        found = policy.keyword_reasons(text, lang, self.rules)
        return [esc.Reason(r.code, r.detail, r.evidence) for r in found]

    def _reasons(self, reasons: Sequence[esc.Reason], context: esc.EscalationContext) -> list[policy.Reason]:
        found = [r for r in map(to_policy, reasons) if r is not None]
        if context.last_message:
            found += policy.keyword_reasons(context.last_message, context.lang, self.rules)
        unique: dict[tuple[str, str], policy.Reason] = {}
        for r in found:
            unique.setdefault((r.code, r.detail), r)
        return list(unique.values()) or [policy.Reason("asked_for_person", "escalated")]

    def _entry(self, conv: Conversation | None, reasons: Sequence[policy.Reason]) -> Entry | None:
        if conv is None or not conv.last_entry or not any(r.code == "topic_rule" for r in reasons):
            return None
        return self.library.kb.by_id.get(conv.last_entry)

    def _route(
        self, reasons: list[policy.Reason], context: esc.EscalationContext, entry: Entry | None
    ) -> policy.Route:
        default = self.settings.handoff.default_department
        asked = context.department if context.department in self.rules.departments else default
        found = policy.route(reasons, self.rules, asked, entry)
        if context.tier > found.tier:
            found = dataclasses.replace(found, tier=min(context.tier, MAX_TIER))
        return found

    async def _earlier(self, conversation_key: str, conversation_id: str, now: int) -> list[str]:
        key = handoffs_key(conversation_key)
        before = await self.redis.zrevrange(key, 0, EARLIER_KEEP)
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(key, {conversation_id: now})
        pipe.zremrangebyrank(key, 0, -EARLIER_KEEP - 2)
        await pipe.execute()
        return [str(c) for c in before if c != conversation_id][:EARLIER_KEEP]

    async def _before(self, conv: Conversation | None, now: int) -> tuple[str, int, list[Line]]:
        """The customer's conversation just before this one, when the bot alone had it (one a person had
        is among the earlier conversations) and it ended within BEFORE_WINDOW_S: (id, last activity,
        its last lines). A customer back after the idle close picks up where they left off; the person
        taking over must see what they said then, or they are asked again."""
        prev = await self.conversations.get(conv.previous) if conv is not None and conv.previous else None
        if prev is None or prev.escalation or prev.updated < now - BEFORE_WINDOW_S * 1000:
            return "", 0, []
        lines = [Line(e.sender, e.text) for e in await self.conversations.log(prev.id, MAX_BEFORE_LINES * 2)
                 if e.text and e.sender in ("customer", "bot")]
        return prev.id, prev.updated, lines[-MAX_BEFORE_LINES:]

    async def escalate(
        self, conversation_id: str, reasons: list[esc.Reason], context: esc.EscalationContext
    ) -> None:
        """Route, record, queue, maybe auto-assign, and tell the customer their position and wait."""
        now = now_ms()
        conv = await self.conversations.get(conversation_id)
        found = self._reasons(reasons, context)
        route = self._route(found, context, self._entry(conv, found))
        log = await self.conversations.log(conversation_id, MAX_LINES)
        mood_words = [w for r in found if r.code == "upset" for w in r.evidence]
        before = await self._before(conv, now)
        record = build_record(
            conversation_id, route, lines_of(log),
            channel=context.channel, lang=context.lang, mood_score=context.mood_score,
            mood_words=mood_words, candidates=candidates_from(log, context.candidates),
            earlier=await self._earlier(context.conversation_key, conversation_id, now),
            conversation_key=context.conversation_key, created_at=now,
            before=before[2], before_id=before[0], before_at=before[1],
        )  # fmt: skip
        await save_record(self.redis, record)
        told = dataclasses.replace(context, department=route.department, tier=route.tier)
        plain = [esc.Reason(r.code, r.detail, r.evidence) for r in found]
        await self.recorder.escalate(conversation_id, plain, told)
        await self.notifier.hold_refresh(conversation_id)
        try:
            await self.queues.enqueue(conversation_id, route, lang=context.lang, channel=context.channel)
        except QueueError as exc:
            if exc.code != "busy":
                raise
            logger.info("handoff: %s is already with the handoff (%s)", conversation_id, exc)
        else:
            await self.notifier.begin(conversation_id)
        auto = self.settings.handoff.routing == "auto"
        if auto and await self.queues.assign_auto(conversation_id, await self.agent_list()):
            await self.notifier.tell_joined(conversation_id)
            return
        await self.notifier.tell_queued(conversation_id)

    # -- the customer's side ---------------------------------------------------------------------

    async def customer_message(self, conversation_id: str, text: str, waiting: bool = False) -> str | None:
        """A customer message while with a person (the relay path): keeps an e-mail address they leave.
        `waiting`: queued, and not chasing (the engine tells a chaser where they stand): out of hours,
        the customer hears once per handoff that it is kept for the team."""
        if waiting:
            await self._add_to_record(conversation_id, text)
        email = find_email(text)
        if email is None:
            if not await self._check_email(conversation_id, text) and waiting:
                await self.notifier.note_for_later(conversation_id)
            return None
        conv = await self.conversations.get(conversation_id)
        if conv is None:
            return None
        await self.conversations.update(conversation_id, email=email)
        await self.notifier.say(conv, say("email", conv.lang, email=email))
        return email

    async def _add_to_record(self, conversation_id: str, text: str) -> None:
        """What a waiting customer adds ("es que mi pedido llegó roto…") goes into the handoff's record and
        its summary, so the card an agent triages from says it before anyone has claimed it."""
        try:
            record = await load_record(self.redis, conversation_id)
            if record is not None:
                await save_record(self.redis, with_line(record, Line("customer", text)))
        except Exception:  # the summary is help for the agent; the message itself is stored already
            logger.exception("handoff: %s: could not add a waiting message to its record", conversation_id)

    async def _check_email(self, conversation_id: str, text: str) -> bool:
        """An address with a slip, while waiting (the bot asked for one, an agent has not answered): say
        so, rather than let the customer leave believing we will write to them. True when said."""
        almost = find_almost_email(text)
        if almost is None:
            return False
        conv = await self.conversations.get(conversation_id)
        if conv is None or conv.state != "queued":
            return False
        await self.notifier.say(conv, say("email_check", conv.lang, email=almost))
        return True

    async def rate(self, conversation_id: str, score: int, comment: str = "") -> bool | None:
        """The customer's 1-5 rating after a resolution: on the conversation and in the audit record. True
        when taken.

        Only while one is asked for and not yet given. One per resolution: a second one (an old button,
        another tab) is refused with a thank-you, False. None when this resolution asked for none (spam, a
        duplicate; an old button of an earlier one): nothing is stored or said, the caller says the
        option is gone.
        """
        if not 1 <= score <= 5:
            raise ValueError(f"a rating is 1 to 5, got {score}")
        rated, earlier, asked, awaiting = cast(list[str | None], await self.redis.hmget(
            keys.conv(conversation_id), ["rating", "rating_comment", "rating_asked", "awaiting"]
        ))
        conv = await self.conversations.get(conversation_id)
        # Stars pressed after the customer's goodbye (Telegram keeps the buttons) still rate it.
        late = conv is not None and conv.state == "closed"
        if rated:
            if conv is not None:
                await self.notifier.say(conv, say("already_rated", conv.lang), after_close=late, kind=RATING_KIND)
            return False
        # `awaiting` too: a conversation resolved before "rating_asked" was kept has only that to tell.
        if asked != "1" and awaiting not in ("rating", "rating_stars"):
            logger.info("handoff: %s: a rating nobody asked for (%s stars) is not taken", conversation_id, score)
            return None
        # A comment written before the stars stays with them.
        comment = (comment.strip() or earlier or "")[: self.settings.server.max_message_chars]
        await self.conversations.update(
            conversation_id, rating=score, rating_comment=comment,
            awaiting="" if comment or late else "rating_comment",
        )  # fmt: skip
        await audit.record_rating(self.redis, conversation_id, score, comment=comment)
        if conv is not None:
            await self.notifier.say(conv, say("rated", conv.lang), after_close=late, kind=RATING_KIND)
        return True

    async def standing(self, conv: Conversation) -> StatusUpdate | None:
        """Where a customer with the handoff side stands now: what a reconnecting widget is told."""
        return await self.notifier.standing(conv)

    async def remind(self, conversation_id: str) -> bool:
        """/start, /agent or "Talk to a person" again while with a person: where they stand."""
        return await self.notifier.remind(conversation_id)

    async def leave_queue(self, conversation_id: str) -> bool:
        """The customer left while waiting (the record says "abandoned"); False if an agent has it now."""
        try:
            await self.queues.abandon(conversation_id, only_waiting=True)
        except QueueError as exc:
            logger.info("%s did not leave the queue: %s", conversation_id, exc)
            return False
        return True

    async def comment(self, conversation_id: str, text: str) -> bool:
        """The customer's comment on a resolution, before or after the stars; False if none was asked for."""
        rated, awaiting = cast(list[str | None], await self.redis.hmget(
            keys.conv(conversation_id), ["rating", "awaiting"]
        ))
        if awaiting not in ("rating", "rating_comment") or not text.strip():
            return False
        text = text.strip()[: self.settings.server.max_message_chars]
        # One comment: what the customer writes after it is a conversation with the bot again, except a
        # rating still to give ("rating_stars": a typed "4" is read as the stars).
        await self.conversations.update(conversation_id, rating_comment=text, awaiting="" if rated else "rating_stars")
        await audit.record_rating(self.redis, conversation_id, int(rated) if rated else 0, comment=text)
        conv = await self.conversations.get(conversation_id)
        if conv is not None and rated:
            await self.notifier.say(conv, say("commented", conv.lang), kind=RATING_KIND)
        elif conv is not None:  # the stars' buttons again: the prompt's are no longer the newest message
            await self.notifier.say(conv, say("commented_rate", conv.lang), RATING_BUTTONS, kind=RATING_KIND)
        return True

    # -- the agents' side ------------------------------------------------------------------------

    async def claim(self, agent: Agent, conversation_id: str | None = None) -> str | None:
        if conversation_id:
            await self.queues.claim(agent, conversation_id)
            claimed: str | None = conversation_id
        else:
            claimed = await self.queues.claim_next(agent)
        if claimed:
            await self.conversations.set_state(claimed, "assigned")
            # Before the claim returns, so "Ana has joined" is out before Ana can write.
            await self.notifier.tell_joined(claimed)
        return claimed

    async def _held(self, agent: Agent, conversation_id: str) -> HandoffState:
        st = await self.queues.state(conversation_id)
        if st is None or st.state != "assigned":
            raise QueueError("not_assigned", f"conversation {conversation_id} is not assigned")
        if st.agent != agent.name and not agent.sees_all:
            raise QueueError("not_yours", f"conversation {conversation_id} is assigned to someone else")
        return st

    async def reply(self, agent: Agent, conversation_id: str, text: str) -> str:
        """An agent's message: into the transcript, out to the customer's channel; stops the reply SLA."""
        st = await self._held(agent, conversation_id)
        conv = await self.conversations.get(conversation_id)
        if conv is None or conv.state == "closed":
            raise QueueError("gone", f"conversation {conversation_id} is closed")
        fields = entry_fields("agent", text, ts=now_ms(), lang=conv.lang, author=agent.label)
        appended = await self.conversations.append(conversation_id, fields, sender="agent")
        if appended.status != "new":
            raise QueueError("gone", f"conversation {conversation_id} is closed")
        await self.outbox.emit(Outbound(
            conversation_id=conv.id, conversation_key=conv.key, channel=cast(Channel, conv.channel),
            id=appended.message_id, text=text, sender="agent", lang=conv.lang, author=agent.label,
        ))  # fmt: skip
        if not st.first_reply_at or st.reply_due:
            await self.queues.first_reply(st.agent, conversation_id)
        await self.queues.renew(st.agent, conversation_id)
        return appended.message_id

    async def note(self, agent: Agent, conversation_id: str, text: str) -> str:
        fields = {"author": agent.name, "display": agent.label, "text": text, "ts": now_ms()}
        note_id = await self.redis.xadd(notes_key(conversation_id), cast(Any, fields), maxlen=NOTE_MAXLEN,
                                        approximate=True)
        return str(note_id)

    async def notes(self, conversation_id: str) -> list[dict[str, Any]]:
        rows = cast(list[tuple[str, dict[str, str]]],
                    await self.redis.xrange(notes_key(conversation_id), count=NOTE_MAXLEN))
        return [
            {"id": str(i), "author": f.get("display") or f.get("author", ""), "agent": f.get("author", ""),
             "text": f.get("text", ""), "ts": int(f.get("ts") or 0)}
            for i, f in rows
        ]  # fmt: skip

    async def transfer(self, agent: Agent, conversation_id: str, department: str, note: str = "") -> None:
        await self.queues.transfer(agent, conversation_id, department, note=note)
        if note:
            await self.note(agent, conversation_id, note)
        await self.conversations.set_state(conversation_id, "queued")

    async def escalate_tier(self, agent: Agent, conversation_id: str, note: str = "") -> None:
        await self.queues.escalate(agent, conversation_id, note=note)
        if note:
            await self.note(agent, conversation_id, note)
        await self.conversations.set_state(conversation_id, "queued")

    async def release(self, agent: Agent, conversation_id: str) -> None:
        await self.queues.release(agent, conversation_id)
        await self.conversations.set_state(conversation_id, "queued")

    async def take_over(self, supervisor: Agent, conversation_id: str) -> None:
        """A supervisor takes a conversation another agent holds (gone quiet, away, signed off), in one
        step: it never passes through the queue, and the customer hears only who joined."""
        if not supervisor.sees_all:
            raise QueueError("not_allowed", "only a supervisor takes over a conversation")
        st = await self._held(supervisor, conversation_id)
        if st.agent == supervisor.name:
            return
        if supervisor.disabled or not supervisor.may_take(*st.queue):
            raise QueueError("not_allowed", f"agent {supervisor.name} does not take queue {st.queue_name}")
        await self.queues.take_over(supervisor, st)
        # Before the call returns, as for a claim: "Sara has joined" is out before Sara can write.
        await self.notifier.tell_joined(conversation_id)

    async def return_to_bot(self, agent: Agent, conversation_id: str) -> None:
        await self.queues.return_to_bot(agent, conversation_id)
        # The notice (status "bot" and a message) follows the event; the state is set here at once.
        await self.conversations.set_state(conversation_id, "bot")

    async def resolve(self, agent: Agent, conversation_id: str, outcome: str, note: str = "") -> None:
        if outcome not in OUTCOMES:
            raise QueueError("bad_outcome", f"outcome must be one of {', '.join(OUTCOMES)}")
        await self.queues.resolve(agent, conversation_id, outcome, note=note)
        if note:
            await self.note(agent, conversation_id, note)
        await self.conversations.set_state(conversation_id, "resolved")

    async def heartbeat(self, agent: Agent, state: str | None = None) -> str:
        """Presence (kept as it was unless `state` is given) and the agent's claim leases."""
        if state is None:
            current = await self.presence.status(agent.name)
            state = "away" if current == "away" else "online"
        await self.presence.heartbeat(agent.name, cast(Any, state))
        await self.queues.renew(agent.name)
        return state


def _report(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("handoff task %s stopped", task.get_name(), exc_info=task.exception())

