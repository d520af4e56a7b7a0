"""The five-second summary an agent reads before taking over, built from the conversation itself."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.intents import requests_person
from handoff.policy import Reason

logger = logging.getLogger(__name__)

MAX_SUMMARY_CHARS = 400
QUOTE_CHARS = 120
# A customer message this short is a reaction ("agent", "no"), not the problem itself.
MIN_ISSUE_WORDS = 4
# A request for a person this short is only that: "quiero hablar con una persona, por favor".
PERSON_REQUEST_WORDS = 8
# Most telling first: what an agent must see before anything else.
ORDER = (
    "keyword_rule",
    "upset",
    "sla_breach",
    "negative_feedback",
    "asked_for_person",
    "topic_rule",
    "repeated_misunderstanding",
    "low_confidence",
)
LABELS = {
    "keyword_rule": "rule {detail}",
    "upset": "upset",
    "sla_breach": "SLA breached",
    "negative_feedback": "answer did not help",
    "asked_for_person": "asked for a person",
    "topic_rule": "topic needs a person",
    "repeated_misunderstanding": "bot did not understand",
    "low_confidence": "bot unsure",
}


@dataclass(frozen=True)
class Line:
    """One transcript message as the summary sees it."""

    sender: str  # customer | bot | agent | system
    text: str
    # The notice that closed an earlier handoff (the resolution's rating question): what the customer
    # wrote after it (thanks, stars, a comment) is about the help they had, not why they are back.
    ends_handoff: bool = False
    # A customer question the bot answered and they did not turn down: not what they want a person for.
    answered: bool = False


def _quote(text: str) -> str:
    one = " ".join(text.split())
    return f'"{one[: QUOTE_CHARS - 1]}…"' if len(one) > QUOTE_CHARS else f'"{one}"'


def _evidence(item: str) -> str:
    """A bare word quoted; the detector's labels ('negative: "harto"', 'shouting (capitals)') as they are."""
    return item if any(c in item for c in ':"(') else f"'{item}'"


def _reason_part(reasons: Sequence[Reason], mood_score: float | None, mood_words: Sequence[str]) -> str:
    parts = []
    for r in sorted({r.code: r for r in reasons}.values(), key=lambda r: ORDER.index(r.code)):
        label = LABELS[r.code].format(detail=r.detail)
        if r.code == "upset":
            words = list(mood_words) or list(r.evidence)
            score = f"{mood_score:.2f}" if mood_score is not None else ""
            inside = ", ".join(x for x in (score, ", ".join(_evidence(w) for w in words[:3])) if x)
            label += f" ({inside})" if inside else ""
        elif r.code in ("keyword_rule", "asked_for_person") and r.evidence:
            label += f" ('{r.evidence[0]}')"
        parts.append(label)
    text = "; ".join(parts)
    return text[:1].upper() + text[1:]


class Told(Protocol):
    """A transcript line as since_a_person reads it (a Line, a stored LogEntry)."""

    @property
    def sender(self) -> str: ...
    @property
    def ends_handoff(self) -> bool: ...


def since_a_person(lines: Sequence[Told]) -> int:
    """Where this handoff's story starts: after a person last wrote to the customer, or an earlier handoff
    ended. A second handoff is about what brought them back, not what a person already solved (nor the
    "thank you so much!" and the comment after it)."""
    ends = (i + 1 for i in range(len(lines) - 1, -1, -1) if lines[i].sender == "agent" or lines[i].ends_handoff)
    return next(ends, 0)


def issue(lines: Sequence[Line], before: Sequence[Line] = ()) -> tuple[str, str]:
    """(the first substantive thing the customer said, the last thing they said), since_a_person. When this
    conversation has nothing substantive ("I need to talk to a person"), the first of `before` (their
    conversation with the bot just before this one) says what it is about."""
    own = [ln for ln in lines[since_a_person(lines):] if ln.sender == "customer" and ln.text.strip()]
    if not own:
        return "", ""
    said = [ln.text.strip() for ln in own]
    open_ = [ln.text.strip() for ln in own if not ln.answered]
    earlier = [ln.text.strip() for ln in before if ln.sender == "customer" and ln.text.strip()]
    # "I want to talk to a person please" says who they want, not what about; a question the bot answered
    # is not what they want a person for, while one it did not answer is there.
    first = next((t for t in [*open_, *said, *earlier] if _substantive(t)), said[0])
    return first, said[-1] if said[-1] != first else ""


def _substantive(text: str) -> bool:
    return len(text.split()) >= MIN_ISSUE_WORDS and not _only_asks_for_person(text)


def _only_asks_for_person(text: str) -> bool:
    return bool(requests_person(text)) and len(text.split()) <= PERSON_REQUEST_WORDS


def build_summary(
    lines: Sequence[Line],
    reasons: Sequence[Reason],
    *,
    lang: str = "",
    channel: str = "",
    mood_score: float | None = None,
    mood_words: Sequence[str] = (),
    candidates: Sequence[tuple[str, float]] = (),
    earlier: int = 0,
    before: Sequence[Line] = (),
) -> str:
    """One short paragraph: why it came, what the customer wants, what the bot tried, and who they are."""
    first, last = issue(lines, before)
    parts = [_reason_part(reasons, mood_score, mood_words)]
    if first:
        parts.append(f"Wants: {_quote(first)}")
    if last:
        parts.append(f"Last: {_quote(last)}")
    if candidates:
        parts.append("Bot tried: " + ", ".join(f"{e} {s:.2f}" for e, s in candidates[:2]))
    customer_msgs = sum(1 for ln in lines if ln.sender == "customer")
    who = [x for x in (lang, channel, f"{customer_msgs} msg{'' if customer_msgs == 1 else 's'}") if x]
    if earlier:
        who.append(f"{earlier} earlier conversation{'s' if earlier > 1 else ''}")
    if any(ln.sender == "customer" for ln in before):
        who.append("back after a conversation with the bot")
    parts.append(", ".join(who))
    text = ". ".join(p for p in parts if p) + "."
    return text if len(text) <= MAX_SUMMARY_CHARS else text[: MAX_SUMMARY_CHARS - 1] + "…"
