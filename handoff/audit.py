"""The escalation record: an append-only Redis stream of every handoff state change, and its readers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from handoff import keys
from handoff.presence import now_ms

logger = logging.getLogger(__name__)

EVENTS = (
    "queued",
    "claimed",
    "assigned",
    "transferred",
    "escalated",
    "released",
    "lease_lapsed",
    "resolved",
    "returned_to_bot",
    "abandoned",
    "sla_breach",
    "rated",
)


@dataclass(frozen=True)
class AuditEntry:
    """One line of the record: who did what to which conversation, from where to where, and why."""

    id: str
    ts: int  # ms
    conversation_id: str
    event: str
    actor: str
    from_: str
    to: str
    reasons: tuple[str, ...]
    outcome: str = ""
    detail: str = ""

    @classmethod
    def from_fields(cls, entry_id: str, f: dict[str, str]) -> AuditEntry:
        return cls(
            id=entry_id,
            ts=int(float(f.get("ts", "0"))),
            conversation_id=f.get("conv", ""),
            event=f.get("event", ""),
            actor=f.get("actor", ""),
            from_=f.get("from", ""),
            to=f.get("to", ""),
            reasons=tuple(r for r in f.get("reasons", "").split(",") if r),
            outcome=f.get("outcome", ""),
            detail=f.get("detail", ""),
        )


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


async def append(
    redis: aioredis.Redis,
    conversation_id: str,
    event: str,
    *,
    actor: str = "system",
    from_: str = "",
    to: str = "",
    reasons: Sequence[str] = (),
    outcome: str = "",
    detail: str = "",
    now: int | None = None,
) -> str:
    """Append an entry written outside the queue scripts (SLA notes, ratings); returns its stream id."""
    if event not in EVENTS:
        raise ValueError(f"unknown audit event '{event}'")
    fields: dict[Any, Any] = {
        "ts": now_ms() if now is None else now,
        "conv": conversation_id,
        "event": event,
        "actor": actor,
        "from": from_,
        "to": to,
        "reasons": ",".join(reasons),
        "outcome": outcome[:200],
        "detail": detail[:500],
    }
    return _text(await redis.xadd(keys.AUDIT, fields, maxlen=keys.AUDIT_MAXLEN, approximate=True))


async def record_rating(
    redis: aioredis.Redis, conversation_id: str, stars: int, now: int | None = None, comment: str = ""
) -> str:
    """The customer's 1-5 rating after a resolution and their comment; 0 stars: a comment without them."""
    if not 0 <= stars <= 5 or (stars == 0 and not comment):
        raise ValueError(f"a rating is 1 to 5 stars (0 with a comment), got {stars}")
    return await append(
        redis, conversation_id, "rated", actor="customer", outcome=str(stars) if stars else "", detail=comment,
        now=now,
    )


def _entries(rows: Any, conversation_id: str | None = None) -> list[AuditEntry]:
    """Stream rows as entries, oldest first as given; with `conversation_id`, only that conversation's
    (filtered before an entry is built: a scan skips most rows)."""
    out = []
    for entry_id, fields in rows or []:
        decoded = {_text(k): _text(v) for k, v in (fields or {}).items()}
        if conversation_id is None or decoded.get("conv") == conversation_id:
            out.append(AuditEntry.from_fields(_text(entry_id), decoded))
    return out


async def read(
    redis: aioredis.Redis, start: str = "-", count: int = 1000, conversation_id: str | None = None
) -> list[AuditEntry]:
    """Entries oldest first from `start` (a stream id, "-" = the start), optionally of one conversation."""
    return _entries(await redis.xrange(keys.AUDIT, min=start, count=count), conversation_id)


async def read_latest(redis: aioredis.Redis, start: str = "-", count: int = 1000) -> list[AuditEntry]:
    """The newest `count` entries from `start` on, oldest first: a bounded read that drops the oldest,
    never the newest (a records page must show today's handoffs however long the stream)."""
    return _entries(reversed(await redis.xrevrange(keys.AUDIT, max="+", min=start, count=count) or []))


async def newest_first(redis: aioredis.Redis, since_ms: int, page: int, most: int) -> AsyncIterator[AuditEntry]:
    """Entries from the newest back to `since_ms`, read `page` at a time, no more pages once `most`
    entries are read (a busy desk's week is cut, not read whole): stop iterating to read no further."""
    top, scanned = "+", 0
    while scanned < most:
        rows = list(await redis.xrevrange(keys.AUDIT, max=top, min=f"{since_ms}-0", count=page) or [])
        for entry in _entries(rows):
            yield entry
        if len(rows) < page:
            return
        scanned += len(rows)
        top = "(" + _text(rows[-1][0])  # exclusive: older than the last one read


HISTORY_PAGE = 10_000


async def history(redis: aioredis.Redis, conversation_id: str, since_ms: int = 0) -> list[AuditEntry]:
    """Every entry of one conversation (for the console's record view and tests): the stream is read in
    pages from `since_ms` (the conversation's creation: nothing of it is older), not only its oldest
    page, which a busy desk fills with other conversations within days; the whole stream at worst."""
    out: list[AuditEntry] = []
    start, scanned = f"{since_ms}-0" if since_ms else "-", 0
    while scanned < keys.AUDIT_MAXLEN:
        rows = list(await redis.xrange(keys.AUDIT, min=start, count=HISTORY_PAGE) or [])
        out += _entries(rows, conversation_id)
        if len(rows) < HISTORY_PAGE:
            break
        scanned += len(rows)
        start = "(" + _text(rows[-1][0])  # exclusive: after the last one read
    return out
