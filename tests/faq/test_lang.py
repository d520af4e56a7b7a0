"""Tests for faq.lang."""

import pytest

from faq.lang import detect_lang, lang_scores


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("cuanto tarda el enbio", "es"),
        ("¿Dónde está mi pedido?", "es"),
        ("mi tarjeta no funciona", "es"),
        ("how lomg does shiping take", "en"),
        ("My card was declined", "en"),
        ("where is my order", "en"),
    ],
)
def test_detects_spanish_and_english(text: str, lang: str) -> None:
    assert detect_lang(text) == lang


def test_no_evidence_gives_the_default() -> None:
    assert detect_lang("ok", default="es") == "es"
    assert detect_lang("ok", default="en") == "en"
    assert detect_lang("12345", default="xx") == "en"


@pytest.mark.parametrize(
    ("text", "votes"),
    [
        # A word with a Spanish-only letter votes once, also when the list has it already ("qué").
        ("my parcel arrived broken, qué hago?", (1.0, 1.0)),
        ("hi, my order hasn't arrived todavía", (1.0, 2.0)),
        ("la aplicación no funciona", (2.0, 0.0)),
        # An opening mark votes only when no word does.
        ("¿Dónde está mi pedido?", (4.0, 0.0)),
        ("my parcel arrived broken, ¿qué hago?", (1.0, 1.0)),
        ("¿ok?", (1.0, 0.0)),
        ("reembolso", (0.0, 0.0)),
    ],
)
def test_accented_words_vote_once_each(text: str, votes: tuple[float, float]) -> None:
    assert lang_scores(text) == votes
