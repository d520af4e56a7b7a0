"""Tests for faq.matcher, on the bilingual fixture KB and on one built in code."""

import pytest

from faq.matcher import Matcher
from faq.model import Entry, KnowledgeBase


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("cuanto tarda el enbio", "es", "shipping-time"),
        ("how lomg does shiping take", "en", "shipping-time"),
        ("i forgot my pasword", "en", "change-password"),
        ("olvide mi contraseña", "es", "change-password"),
        ("quiero que me devuelvan el dinero", "es", "refund"),
        ("the product arrived damaged", "en", "damaged-item"),
    ],
)
def test_best_candidate_with_typos_in_both_languages(
    matcher: Matcher, text: str, lang: str, expected: str
) -> None:
    match = matcher.match(text)
    assert match.lang == lang
    assert match.best is not None and match.best.entry_id == expected


def test_candidates_are_one_per_entry_best_first_scores_in_range(matcher: Matcher) -> None:
    match = matcher.match("how long does shipping take", limit=4)
    ids = [c.entry_id for c in match.candidates]
    assert len(ids) == 4 == len(set(ids))
    scores = [c.score for c in match.candidates]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert 0.0 <= match.confidence <= 1.0
    assert match.candidates[0].question == "How long does shipping take?"


def test_given_language_wins_over_detection(matcher: Matcher) -> None:
    match = matcher.match("paypal", lang="es")
    assert match.lang == "es"
    assert match.best is not None and match.best.entry_id == "payment-methods"


def test_exact_question_is_confident_and_out_of_scope_is_not(matcher: Matcher) -> None:
    inside = matcher.match("How do I change my password?")
    outside = matcher.match("what is the meaning of life and the universe")
    assert inside.confidence > 0.9
    assert outside.confidence < 0.5
    assert matcher.match("¿quién ganó el partido de fútbol ayer?").confidence < 0.3


def test_empty_and_unknown_words_give_zero_confidence(matcher: Matcher) -> None:
    assert matcher.match("").confidence == 0.0
    assert matcher.match("!!!").candidates == ()
    assert matcher.match("zzqx vvkw").confidence < 0.2


def test_entry_without_questions_in_the_language_is_still_found() -> None:
    kb = KnowledgeBase(
        (
            Entry("gift-card", {"en": ("Do you sell gift cards?",)}, {"en": "Yes."}),
            Entry("returns", {"es": ("¿Cómo devuelvo un producto?",)}, {"es": "Así."}),
        )
    )
    match = Matcher(kb).match("gift cards", lang="es")
    assert match.lang == "es"
    assert match.best is not None and match.best.entry_id == "gift-card"


def test_empty_knowledge_base() -> None:
    match = Matcher(KnowledgeBase()).match("hello")
    assert match.candidates == () and match.confidence == 0.0


def test_no_language_evidence_asks_both_indexes() -> None:
    kb = KnowledgeBase(
        (
            Entry(
                "battery",
                {"en": ("The battery drains fast",), "es": ("La batería dura poco", "No carga la batería")},
                {"en": "Charge it.", "es": "Cárgalo."},
            ),
            Entry(
                "password",
                {"en": ("I forgot my password",), "es": ("Olvidé la contraseña", "No recuerdo la clave")},
                {"en": "Reset it.", "es": "Restablécela."},
            ),
        )
    )
    match = Matcher(kb).match("drains fast")  # no English or Spanish word votes; Spanish has more examples
    assert match.lang == "en"
    assert match.best is not None and match.best.entry_id == "battery"


def test_counting_sorted_values_matches_numpy_unique() -> None:
    import numpy as np

    from faq.matcher import _count_sorted

    rng = np.random.default_rng(3)
    for size in (0, 1, 2, 7, 150):
        values = rng.integers(0, 40, size).astype(np.int64)
        got, counts = _count_sorted(values)
        want, want_counts = np.unique(values, return_counts=True)
        assert got.tolist() == want.tolist() and counts.tolist() == want_counts.tolist()


def test_large_index_gathering_scores_like_the_full_product(matcher: Matcher) -> None:
    """Small indexes score a question by one product over every weight, large ones gather its
    features' lists: both must give the same similarities."""
    import numpy as np

    from faq.matcher import words_of

    for lang, text in (("en", "how long does shipping take"), ("es", "olvidé mi contraseña")):
        index = matcher._indexes[lang]
        assert index.x is not None
        cols, vals = index.space.vector(words_of(text), lang)
        full = index.signals(words_of(text))
        assert full is not None
        gathered = index._dot(index.x_t, cols, vals, len(index.labels))
        assert np.allclose(full.sims, gathered) and full.sims.max() > 0
