"""The seam between the bot and the people: escalate a conversation, with its reasons and context."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import redis.asyncio as aioredis

from handoff import audit, keys
from handoff.conversations import now_ms

logger = logging.getLogger(__name__)

# Why a conversation goes to a person (DESIGN.md, Handoff); priority will come from these.
LOW_CONFIDENCE = "low_confidence"
MISUNDERSTOOD = "repeated_misunderstanding"
ASKED_FOR_PERSON = "asked_for_person"
UPSET = "upset"
NEGATIVE_FEEDBACK = "negative_feedback"
TOPIC_RULE = "topic_rule"
SLA_BREACH = "sla_breach"
KEYWORD_RULE = "keyword_rule"  # a keyword rule of the handoff rules file matched (detail = rule name)
REASON_CODES = (
    LOW_CONFIDENCE, MISUNDERSTOOD, ASKED_FOR_PERSON, UPSET, NEGATIVE_FEEDBACK, TOPIC_RULE, SLA_BREACH,
    KEYWORD_RULE,
)


@dataclass(frozen=True)
class Reason:
    code: str  # one of REASON_CODES
    detail: str = ""
    evidence: tuple[str, ...] = ()  # the customer's words (or mood cues) that triggered it


@dataclass(frozen=True)
class EscalationContext:
    """What the bot knows when it hands over; the handoff issue adds the transcript and summary."""

    conversation_key: str
    channel: str
    lang: str
    department: str
    tier: int = 1
    mood_score: float | None = None
    # The FAQ candidates the bot considered for the last message: {"entry_id", "score", "question"}.
    candidates: tuple[dict[str, Any], ...] = ()
    last_message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Escalator(Protocol):
    async def escalate(self, conversation_id: str, reasons: list[Reason], context: EscalationContext) -> None:
        """Put the conversation in a person's hands; the engine has already told the customer."""
        ...


class RecordingEscalator:
    """For now: record the decision on the conversation, set it "queued", append to the audit stream.

    The handoff issue replaces this with queues and routing; the engine only sees `Escalator`.
    """

    def __init__(self, redis: aioredis.Redis, *, write_audit: bool = True) -> None:
        self.redis = redis
        # The handoff queue scripts write their own "queued" entry atomically with the enqueue; a
        # second entry here would count every handoff twice in the record.
        self.write_audit = write_audit

    async def escalate(self, conversation_id: str, reasons: list[Reason], context: EscalationContext) -> None:
        ts = now_ms()
        record = {"at": ts, "reasons": [asdict(r) for r in reasons], "context": asdict(context)}
        await self.redis.hset(keys.conv(conversation_id), mapping={
            "state": "queued", "escalation": json.dumps(record, ensure_ascii=False), "escalated_at": ts,
            "department": context.department, "tier": context.tier, "updated": ts,
        })
        # With a person now: the bot's idle sweeper leaves it alone.
        await self.redis.zrem(keys.ACTIVE, conversation_id)
        if self.write_audit:
            await audit.append(
                self.redis, conversation_id, "queued", actor="bot", from_="bot",
                to=f"{context.department}:{context.tier}", reasons=[r.code for r in reasons], now=ts,
            )  # fmt: skip
        logger.info("conversation %s escalated to %s/%d: %s", conversation_id, context.department,
                    context.tier, ", ".join(r.code for r in reasons))
