"""The bot's decision from a match: answer, ask "did you mean ...", or say it does not know."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from faq.model import Action, Decision, KnowledgeBase, Match

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Thresholds:
    answer: float
    clarify: float
    max_suggestions: int = 3


def decide(match: Match, kb: KnowledgeBase, thresholds: Thresholds) -> Decision:
    """ANSWER at or above `answer`, CLARIFY with the top entries at or above `clarify`, else UNKNOWN."""
    by_id = kb.by_id
    best = match.best
    if best is not None and best.entry_id in by_id and match.confidence >= thresholds.answer:
        return Decision(Action.ANSWER, match, entry=by_id[best.entry_id])
    if match.confidence >= thresholds.clarify:
        suggestions = tuple(by_id[c.entry_id] for c in match.candidates if c.entry_id in by_id)
        suggestions = suggestions[: max(thresholds.max_suggestions, 0)]
        if suggestions:
            return Decision(Action.CLARIFY, match, suggestions=suggestions)
    return Decision(Action.UNKNOWN, match)
