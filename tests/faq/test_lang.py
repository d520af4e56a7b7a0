"""Tests for faq.lang."""

import pytest

from faq.lang import detect_lang


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
