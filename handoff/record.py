"""The handoff record an agent opens: reasons, evidence, mood, candidates, transcript, customer, summary."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import redis.asyncio as aioredis

from handoff import keys
from handoff.policy import Reason, Route
from handoff.summary import Line, build_summary

logger = logging.getLogger(__name__)

MAX_LINES = 50
MAX_BEFORE_LINES = 20
MAX_LINE_CHARS = 1000
RECORD_TTL_S = 90 * 86400


@dataclass(frozen=True)
class CandidateScore:
    entry_id: str
    score: float
    question: str = ""


@dataclass(frozen=True)
class HandoffRecord:
    conversation_id: str
    channel: str
    lang: str
    department: str
    tier: int
    priority: str
    reasons: tuple[Reason, ...]
    summary: str
    mood_score: float | None = None
    mood_words: tuple[str, ...] = ()
    candidates: tuple[CandidateScore, ...] = ()
    transcript: tuple[Line, ...] = ()  # the latest MAX_LINES messages, oldest first
    earlier: tuple[str, ...] = ()  # ids of the customer's earlier conversations
    conversation_key: str = ""
    created_at: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    # The customer's conversation with the bot alone just before this one (closed idle, or by them), its
    # last lines, when it ended shortly before: what they already said, so they need not say it again.
    before: tuple[Line, ...] = ()
    before_id: str = ""
    before_at: int = 0  # its last activity (ms)

    def to_json(self) -> str:
        data = asdict(self)
        data["reasons"] = [r.to_dict() for r in self.reasons]
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> HandoffRecord:
        d = json.loads(raw)
        d["reasons"] = tuple(Reason.from_dict(r) for r in d.get("reasons", []))
        d["mood_words"] = tuple(d.get("mood_words", []))
        d["candidates"] = tuple(CandidateScore(**c) for c in d.get("candidates", []))
        d["transcript"] = tuple(Line(**ln) for ln in d.get("transcript", []))
        d["earlier"] = tuple(d.get("earlier", []))
        d["before"] = tuple(Line(**ln) for ln in d.get("before", []))
        return cls(**d)


def build_record(
    conversation_id: str,
    route: Route,
    lines: Sequence[Line],
    *,
    channel: str,
    lang: str,
    mood_score: float | None = None,
    mood_words: Sequence[str] = (),
    candidates: Sequence[CandidateScore] = (),
    earlier: Sequence[str] = (),
    conversation_key: str = "",
    created_at: int = 0,
    before: Sequence[Line] = (),
    before_id: str = "",
    before_at: int = 0,
) -> HandoffRecord:
    """The record for one handoff, with its summary; transcript lines bounded in number and length."""
    kept = _bounded(lines, MAX_LINES)
    summary = build_summary(
        lines,
        route.reasons,
        lang=lang,
        channel=channel,
        mood_score=mood_score,
        mood_words=mood_words,
        candidates=[(c.entry_id, c.score) for c in candidates],
        earlier=len(earlier),
        before=before,
    )
    return HandoffRecord(
        conversation_id,
        channel,
        lang,
        route.department,
        route.tier,
        route.priority.name,
        route.reasons,
        summary,
        mood_score,
        tuple(mood_words),
        tuple(candidates),
        kept,
        tuple(earlier),
        conversation_key,
        created_at,
        before=_bounded(before, MAX_BEFORE_LINES),
        before_id=before_id if before else "",
        before_at=before_at if before else 0,
    )


def with_line(record: HandoffRecord, line: Line) -> HandoffRecord:
    """The record with one more transcript line and its summary written again (a waiting customer's)."""
    lines = (*record.transcript, line)
    summary = build_summary(
        lines, record.reasons, lang=record.lang, channel=record.channel, mood_score=record.mood_score,
        mood_words=record.mood_words, candidates=[(c.entry_id, c.score) for c in record.candidates],
        earlier=len(record.earlier), before=record.before,
    )  # fmt: skip
    return replace(record, transcript=_bounded(lines, MAX_LINES), summary=summary)


def _bounded(lines: Sequence[Line], most: int) -> tuple[Line, ...]:
    return tuple(Line(ln.sender, ln.text[:MAX_LINE_CHARS], ln.ends_handoff) for ln in list(lines)[-most:])


async def save_record(redis: aioredis.Redis, record: HandoffRecord) -> None:
    await redis.set(keys.handoff_record(record.conversation_id), record.to_json(), ex=RECORD_TTL_S)


async def load_record(redis: aioredis.Redis, conversation_id: str) -> HandoffRecord | None:
    raw = await redis.get(keys.handoff_record(conversation_id))
    if raw is None:
        return None
    return HandoffRecord.from_json(raw.decode() if isinstance(raw, bytes) else str(raw))
