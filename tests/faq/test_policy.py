"""Tests for faq.policy: the three confidence bands."""

from faq.matcher import Matcher
from faq.model import Action, Candidate, KnowledgeBase, Match
from faq.policy import Thresholds, decide

T = Thresholds(answer=0.8, clarify=0.3, max_suggestions=2)


def _match(confidence: float) -> Match:
    cands = (Candidate("refund", 0.9), Candidate("shipping-time", 0.5), Candidate("store-hours", 0.1))
    return Match("x", "en", confidence, cands)


def test_three_bands(kb: KnowledgeBase) -> None:
    answer = decide(_match(0.8), kb, T)
    assert answer.action is Action.ANSWER and answer.entry is not None and answer.entry.id == "refund"
    clarify = decide(_match(0.5), kb, T)
    assert clarify.action is Action.CLARIFY
    assert [e.id for e in clarify.suggestions] == ["refund", "shipping-time"]
    unknown = decide(_match(0.29), kb, T)
    assert unknown.action is Action.UNKNOWN and unknown.entry is None and unknown.suggestions == ()


def test_no_candidates_is_unknown(kb: KnowledgeBase) -> None:
    assert decide(Match("x", "en", 0.95), kb, T).action is Action.UNKNOWN


def test_candidate_missing_from_kb_is_not_answered(kb: KnowledgeBase) -> None:
    match = Match("x", "en", 0.99, (Candidate("gone", 0.99),))
    assert decide(match, kb, T).action is Action.UNKNOWN


def test_real_matches_answer_and_refuse(kb: KnowledgeBase, matcher: Matcher) -> None:
    t = Thresholds(answer=0.85, clarify=0.22)  # the values chosen for config/relevo.toml
    answered = decide(matcher.match("¿Cuánto tarda el envío?"), kb, t)
    assert answered.action is Action.ANSWER and answered.entry is not None
    assert answered.entry.answer_in(answered.match.lang) == (
        "Los pedidos llegan en 2 a 4 días hábiles.",
        "es",
    )
    refused = decide(matcher.match("what is the meaning of life and the universe"), kb, t)
    assert refused.action is not Action.ANSWER
    assert decide(matcher.match("¿quién ganó el partido de fútbol?"), kb, t).action is Action.UNKNOWN
