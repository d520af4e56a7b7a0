"""Tell Spanish from English by common words and Spanish-only characters."""

from __future__ import annotations

import logging
import re

from faq.normalize import fold

logger = logging.getLogger(__name__)

# Frequent words that are distinctive of one language (words both languages share, like
# "no", "a", "me", are left out so they do not vote).
_ES = frozenset(
    [
        "el",
        "la",
        "los",
        "las",
        "un",
        "una",
        "unos",
        "unas",
        "del",
        "de",
        "en",
        "y",
        "o",
        "que",
        "es",
        "son",
        "estoy",
        "esta",
        "estan",
        "para",
        "por",
        "con",
        "sin",
        "mi",
        "mis",
        "tu",
        "su",
        "sus",
        "como",
        "cuando",
        "donde",
        "cuanto",
        "cuanta",
        "cuantos",
        "cual",
        "quien",
        "porque",
        "por",
        "que",
        "puedo",
        "puede",
        "quiero",
        "necesito",
        "tengo",
        "tiene",
        "hay",
        "pedido",
        "envio",
        "tarjeta",
        "cuenta",
        "dinero",
        "pago",
        "devolucion",
        "hola",
        "gracias",
        "ayuda",
        "todavia",
        "aun",
        "ya",
        "muy",
        "mas",
        "pero",
        "si",
        "tambien",
        "hacer",
        "hace",
        "llega",
        "llego",
        "cambiar",
        "nuevo",
        "nueva",
        "dias",
        "semana",
        "cobro",
        "cobraron",
    ]
)
_EN = frozenset(
    [
        "the",
        "an",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "at",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "do",
        "does",
        "did",
        "have",
        "has",
        "had",
        "i",
        "my",
        "you",
        "your",
        "we",
        "our",
        "it",
        "this",
        "that",
        "what",
        "when",
        "where",
        "why",
        "how",
        "who",
        "which",
        "can",
        "could",
        "would",
        "should",
        "will",
        "please",
        "help",
        "want",
        "need",
        "order",
        "card",
        "account",
        "money",
        "payment",
        "refund",
        "hello",
        "thanks",
        "still",
        "yet",
        "not",
        "dont",
        "cant",
        "won't",
        "isnt",
        "get",
        "got",
        "there",
        "their",
        "with",
        "from",
        "about",
        "change",
        "new",
        "days",
        "week",
        "charged",
    ]
)
_ES_MARKS = re.compile(r"[¿¡]")
_ES_LETTER_WORD = re.compile(r"\w*[ñáéíóúü]\w*", re.IGNORECASE)


def lang_scores(text: str) -> tuple[float, float]:
    """(Spanish votes, English votes).

    A word with a Spanish-only letter ("pequeño", "aplicación") votes once, like a Spanish word of the
    list, and once in all ("qué" is the list's "que"), not once per letter: one accented word in an English
    message ("my parcel arrived broken, ¿qué hago?") makes it mixed, not Spanish. An opening ¿ or ¡ votes
    only when nothing else does ("¿ok?"): otherwise the Spanish words after it have voted already.
    """
    words = fold(text).split()
    es = sum(1.0 for w in words if w in _ES)
    en = sum(1.0 for w in words if w in _EN)
    if not text.isascii():
        es += sum(1.0 for w in _ES_LETTER_WORD.findall(text) if fold(w) not in _ES)
        if not es and _ES_MARKS.search(text):
            es = 1.0
    return es, en


def detect_lang(text: str, default: str = "en") -> str:
    """ "es" or "en"; `default` when the text gives no evidence either way."""
    es, en = lang_scores(text)
    if es > en:
        return "es"
    if en > es:
        return "en"
    return default if default in ("en", "es") else "en"
