"""A conversation's audit entries split per handoff, and one handoff summarised as a record row."""

from __future__ import annotations

from typing import Any

from handoff import audit


def summarise(conversation_id: str, entries: list[audit.AuditEntry]) -> dict[str, Any]:
    """One row of the escalation record: where it went, who had it, how it ended, the rating."""
    department, tier, reasons = "", 0, []
    agents: list[str] = []
    outcome, rating, comment = "", None, ""
    claimed_at: int | None = None
    ended_at: int | None = None
    for e in entries:
        for side in (e.to, e.from_):
            if ":" in side and side.rsplit(":", 1)[1].isdigit():
                department, tier = side.rsplit(":", 1)[0], int(side.rsplit(":", 1)[1])
                break
        if e.event in ("claimed", "assigned") and e.to:
            if not agents or agents[-1] != e.to:  # claimed again after a lapse: still one hand
                agents.append(e.to)
            claimed_at = claimed_at or e.ts
        if e.event in ENDS:
            ended_at = e.ts
        reasons += [r for r in e.reasons if r not in reasons]
        if e.event == "resolved":
            outcome = e.outcome or "resolved"
        elif e.event in ("returned_to_bot", "abandoned"):
            outcome = e.event
        elif e.event == "rated":
            rating = int(e.outcome) if e.outcome.isdigit() else rating
            comment = e.detail or comment
    return {
        # handoff: the stream id of the handoff's first entry, which GET /api/records/{id}?handoff= opens.
        "conversation_id": conversation_id, "handoff": entries[0].id, "ts": entries[0].ts,
        "department": department, "tier": tier,
        "reasons": reasons, "agent": agents[-1] if agents else None, "agents": agents, "outcome": outcome,
        "rating": rating, "comment": comment, "events": len(entries),
        # Times a manager works with: waited for a person, then handled by people until it ended.
        "claimed_at": claimed_at, "ended_at": ended_at,
        "wait_s": (claimed_at - entries[0].ts) // 1000 if claimed_at else None,
        "handle_s": (ended_at - claimed_at) // 1000 if claimed_at and ended_at else None,
    }  # fmt: skip


ENDS = frozenset({"resolved", "returned_to_bot", "abandoned"})


def split_handoffs(entries: list[audit.AuditEntry]) -> list[list[audit.AuditEntry]]:
    """A conversation's audit entries split per handoff: handed over again after it ended (a question
    after the resolution, say), it is a new row with its own outcome and rating."""
    found: list[list[audit.AuditEntry]] = [[]]
    for e in entries:
        if e.event == "queued" and any(x.event in ENDS for x in found[-1]):
            found.append([])
        found[-1].append(e)
    return found
