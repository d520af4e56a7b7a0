"""The bot's decision from a match: answer, ask "did you mean ...", or say it does not know."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from faq.model import Action, Decision, KnowledgeBase, Match

logger = logging.getLogger(__name__)


# A suggestion scoring under this share of the best one's is noise next to it ("How long does
# delivery to the Canary Islands take?" offered "My battery drains very fast" at 0.02 beside 0.58,
# "cuánto tarda el envío a Sevilla" the same at 0.04 beside 0.40). On bench/shop_cases.csv a fifth
# rather than a tenth offers 65 of 277 off-target suggestions fewer (-23 %) for 1 of 122 right ones.
SUGGESTION_SHARE = 0.2
# Two entries that together hold this much of the score, the second at least TIE_SECOND, are a close
# call between two right-looking answers (Canary Islands shipping or shipping times): the confidence
# that either one alone is right is low, but offering both is what the customer needs.
TIE_MASS = 0.75
TIE_SECOND = 0.25


@dataclass(frozen=True)
class Thresholds:
    answer: float
    clarify: float
    max_suggestions: int = 3


def decide(match: Match, kb: KnowledgeBase, thresholds: Thresholds) -> Decision:
    """ANSWER at or above `answer`; CLARIFY with the top entries at or above `clarify` (when the question
    is related to the knowledge base at all) or on a close call between two entries; else UNKNOWN."""
    by_id = kb.by_id
    best = match.best
    if best is not None and best.entry_id in by_id and match.confidence >= thresholds.answer:
        return Decision(Action.ANSWER, match, entry=by_id[best.entry_id])
    known = [c for c in match.candidates if c.entry_id in by_id]
    tie = len(known) >= 2 and known[1].score >= TIE_SECOND and known[0].score + known[1].score >= TIE_MASS
    if known and ((match.confidence >= thresholds.clarify and match.related) or tie):
        floor = known[0].score * SUGGESTION_SHARE
        suggestions = tuple(by_id[c.entry_id] for c in known if c.score >= floor)
        suggestions = suggestions[: max(thresholds.max_suggestions, 0)]
        if suggestions:
            return Decision(Action.CLARIFY, match, suggestions=suggestions)
    return Decision(Action.UNKNOWN, match)
