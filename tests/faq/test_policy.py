"""Tests for faq.policy: the three confidence bands."""

from faq.matcher import Matcher
from faq.model import Action, Candidate, KnowledgeBase, Match
from faq.policy import Thresholds, decide

T = Thresholds(answer=0.8, clarify=0.3, max_suggestions=2)


def _match(confidence: float) -> Match:
    # Scores like the model's probabilities (they sum to at most 1), with no close call between two.
    cands = (Candidate("refund", 0.6), Candidate("shipping-time", 0.2), Candidate("store-hours", 0.1))
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


def test_suggestions_far_below_the_best_are_left_out(kb: KnowledgeBase) -> None:
    cands = (Candidate("refund", 0.58), Candidate("shipping-time", 0.26), Candidate("store-hours", 0.02))
    clarify = decide(Match("x", "en", 0.5, cands), kb, Thresholds(answer=0.8, clarify=0.3, max_suggestions=3))
    assert [e.id for e in clarify.suggestions] == ["refund", "shipping-time"]


def test_a_close_call_between_two_entries_offers_both(kb: KnowledgeBase) -> None:
    # Neither is likely enough alone (confidence under `clarify`), but together they hold most of it.
    cands = (Candidate("refund", 0.46), Candidate("shipping-time", 0.40), Candidate("store-hours", 0.03))
    close = decide(Match("x", "en", 0.16, cands), kb, T)
    assert close.action is Action.CLARIFY and [e.id for e in close.suggestions] == ["refund", "shipping-time"]
    spread = (Candidate("refund", 0.40), Candidate("shipping-time", 0.20), Candidate("store-hours", 0.2))
    assert decide(Match("x", "en", 0.16, spread), kb, T).action is Action.UNKNOWN
