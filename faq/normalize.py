"""Per-language text normalisation: case, accents, punctuation, stop words, Snowball stemming."""

from __future__ import annotations

import logging
import re
import unicodedata
from functools import lru_cache

import snowballstemmer

logger = logging.getLogger(__name__)

# Function words that carry no topic. Negations and question words are kept on purpose:
# "why was my card declined" and "my card was not declined" must stay apart.
STOP_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        [
            "a",
            "an",
            "the",
            "and",
            "or",
            "but",
            "if",
            "then",
            "so",
            "of",
            "to",
            "in",
            "on",
            "at",
            "by",
            "for",
            "with",
            "from",
            "about",
            "into",
            "onto",
            "over",
            "as",
            "is",
            "am",
            "are",
            "was",
            "were",
            "be",
            "been",
            "being",
            "do",
            "does",
            "did",
            "doing",
            "have",
            "has",
            "had",
            "having",
            "i",
            "me",
            "my",
            "mine",
            "myself",
            "we",
            "us",
            "our",
            "ours",
            "you",
            "your",
            "yours",
            "he",
            "him",
            "his",
            "she",
            "her",
            "it",
            "its",
            "they",
            "them",
            "their",
            "this",
            "that",
            "these",
            "those",
            "there",
            "here",
            "please",
            "hi",
            "hello",
            "hey",
            "thanks",
            "thank",
            "just",
            "also",
            "too",
            "very",
            "really",
            "would",
            "could",
            "should",
            "shall",
            "will",
            "can",
            "may",
            "might",
            "must",
            "get",
            "got",
            "im",
            "ive",
            "id",
            "ill",
            "its",
            "s",
            "t",
            "d",
            "ll",
            "m",
            "re",
            "ve",
            "some",
            "any",
            "again",
            "still",
            "yet",
            "up",
            "out",
            "off",
            "only",
            "own",
            "same",
            "such",
            "than",
        ]
    ),
    "es": frozenset(
        [
            "el",
            "la",
            "los",
            "las",
            "un",
            "una",
            "unos",
            "unas",
            "lo",
            "al",
            "del",
            "de",
            "a",
            "en",
            "y",
            "e",
            "o",
            "u",
            "pero",
            "si",
            "sino",
            "con",
            "sin",
            "por",
            "para",
            "que",
            "es",
            "son",
            "soy",
            "eres",
            "somos",
            "fue",
            "fueron",
            "ser",
            "estar",
            "esta",
            "estoy",
            "estas",
            "estan",
            "estamos",
            "este",
            "esta",
            "esto",
            "estos",
            "esa",
            "ese",
            "eso",
            "esos",
            "esas",
            "aqui",
            "ahi",
            "alli",
            "me",
            "mi",
            "mis",
            "mio",
            "mia",
            "te",
            "tu",
            "tus",
            "tuyo",
            "se",
            "su",
            "sus",
            "nos",
            "nuestro",
            "nuestra",
            "vos",
            "os",
            "le",
            "les",
            "ha",
            "he",
            "has",
            "han",
            "hemos",
            "haber",
            "hay",
            "habia",
            "ya",
            "muy",
            "mas",
            "tambien",
            "hola",
            "gracias",
            "favor",
            "porfa",
            "pues",
            "bueno",
            "entonces",
            "al",
            "mas",
            "tan",
            "como",
            "cual",
        ]
    ),
}
# "como"/"cual" are question words too, but in Spanish they also appear as plain fillers
# ("como siempre"); the topic words around them matter more.

_STEMMERS = {"en": "english", "es": "spanish"}
_TOKEN = re.compile(r"[a-z0-9]+")


# A customer message is folded by each reader of it (intents, language, keyword rules, matcher).
@lru_cache(maxsize=4096)
def fold(text: str) -> str:
    """Lower-case, accents removed (ñ -> n as well), everything but letters and digits made a space."""
    lowered = text.casefold()
    if not lowered.isascii():
        decomposed = unicodedata.normalize("NFKD", lowered)
        lowered = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_TOKEN.findall(lowered))


@lru_cache(maxsize=8)
def _stemmer(lang: str) -> snowballstemmer.Stemmer:
    return snowballstemmer.stemmer(_STEMMERS.get(lang, "english"))


@lru_cache(maxsize=200_000)
def stem(word: str, lang: str) -> str:
    return str(_stemmer(lang).stemWord(word))


def tokens(text: str, lang: str) -> list[str]:
    """Folded, stop-word-free, stemmed tokens; all tokens if every one is a stop word."""
    return word_tokens(fold(text).split(), lang)


def word_tokens(words: list[str], lang: str) -> list[str]:
    """`tokens` of words already folded."""
    stops = STOP_WORDS.get(lang, STOP_WORDS["en"])
    kept = [w for w in words if w not in stops] or words
    return [stem(w, lang) for w in kept]


def normalize(text: str, lang: str) -> str:
    """The text as the matcher compares it: see `tokens`."""
    return " ".join(tokens(text, lang))
