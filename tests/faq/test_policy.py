"""Tests for faq.policy: the three confidence bands."""

from pathlib import Path

import pytest

from faq.loader import load_dir
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


def test_a_question_unrelated_to_the_knowledge_base_gets_no_suggestions(kb: KnowledgeBase) -> None:
    cands = (Candidate("refund", 0.6), Candidate("shipping-time", 0.2))
    assert decide(Match("x", "en", 0.5, cands, related=False), kb, T).action is Action.UNKNOWN
    # A close call between two entries is no noise: both are offered.
    close = (Candidate("refund", 0.46), Candidate("shipping-time", 0.40))
    assert decide(Match("x", "en", 0.16, close, related=False), kb, T).action is Action.CLARIFY


SHOP = Path(__file__).resolve().parents[2] / "config" / "faq"


@pytest.fixture(scope="module")
def shop() -> tuple[KnowledgeBase, Matcher]:
    loaded = load_dir(SHOP)
    assert loaded.kb is not None
    return loaded.kb, Matcher(loaded.kb)


@pytest.mark.parametrize("text", [
    "who won the champions league", "¿cuál es el sentido de la vida?", "which laptop is best for gaming",
    "¿cuál es vuestro horario de atención?", "quien gano el partido del madrid",
])
def test_off_topic_questions_to_the_shop_are_not_met_with_random_suggestions(
    shop: tuple[KnowledgeBase, Matcher], text: str
) -> None:
    kb, matcher = shop
    match = matcher.match(text)
    # Over the clarify threshold, so without the relatedness check these were "did you mean" noise.
    assert match.confidence >= 0.21 and not match.related
    assert decide(match, kb, Thresholds(answer=0.85, clarify=0.21)).action is Action.UNKNOWN


@pytest.mark.parametrize(("text", "expected"), [
    ("still waiting for my refudn", "refund-time"), ("havent received any email after ordering", None),
    ("shipping?", "shipping-cost"),
])
def test_vague_or_misspelt_shop_questions_still_get_suggestions(
    shop: tuple[KnowledgeBase, Matcher], text: str, expected: str | None
) -> None:
    kb, matcher = shop
    decision = decide(matcher.match(text), kb, Thresholds(answer=0.85, clarify=0.21))
    assert decision.action is Action.CLARIFY and decision.match.related
    assert expected is None or expected in [e.id for e in decision.suggestions]
