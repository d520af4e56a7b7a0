"""Text normalisation for mood: case, accents, elongations, tokens with their clause and span."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Accents fold one character to one character, so spans in the folded text are spans in the original.
_FOLD = str.maketrans(
    "áàâäãåéèêëíìîïóòôöõúùûüñçýÿ’‘´`",
    "aaaaaaeeeeiiiiooooouuuuncyy''''",
)
# URLs and @handles say nothing about mood and their capitals are not shouting.
_NOISE = re.compile(r"https?://\S+|www\.\S+|@\w+")
_TOKEN = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*|[.!?;:,\n()]+|[¡¿]")
_RUN3 = re.compile(r"([^\W\d_])\1{2,}")
_BREAK_CHARS = frozenset(".!?;:,\n()¡¿")


def fold(text: str) -> str:
    """Lower case without accents; same length as the input for the scripts Relevo serves."""
    lowered = text.lower()
    if len(lowered) != len(text):  # a few characters (e.g. 'İ') grow when lowered; keep spans honest
        lowered = "".join(c.lower()[:1] for c in text)
    return lowered.translate(_FOLD)


def strip_noise(text: str) -> str:
    """Blank out URLs and @handles, keeping every other character in place."""
    return _NOISE.sub(lambda m: " " * len(m.group()), text)


@dataclass(frozen=True)
class Tokens:
    """The words of a message, each with its folded forms, clause number and span in the original."""

    words: tuple[str, ...]
    alts: tuple[str | None, ...]  # elongation collapsed to one letter ("noooo" -> "no"), else None
    clauses: tuple[int, ...]
    spans: tuple[tuple[int, int], ...]
    elongated: tuple[int, ...]  # indexes of words written with a letter three times or more
    hashtags: frozenset[int]  # indexes of #hashtag words: names, so not shouting nor elongation


def tokenize(folded: str) -> Tokens:
    """Split folded text into words; punctuation only starts a new clause (negation stops there)."""
    words: list[str] = []
    alts: list[str | None] = []
    clauses: list[int] = []
    spans: list[tuple[int, int]] = []
    elongated: list[int] = []
    hashtags: set[int] = set()
    clause = 0
    # Most messages have neither: skip the per-word checks for them (this loop is the hot path).
    check_runs = _RUN3.search(folded) is not None
    check_tags = "#" in folded
    for m in _TOKEN.finditer(folded):
        tok = m.group()
        if tok[0] in _BREAK_CHARS:
            clause += 1
            continue
        start = m.start()
        tag = check_tags and start > 0 and folded[start - 1] == "#"
        if tag:
            hashtags.add(len(words))
        if check_runs and _RUN3.search(tok):
            if not tag:
                elongated.append(len(words))
            alts.append(_RUN3.sub(r"\1", tok))
            tok = _RUN3.sub(r"\1\1", tok)
        else:
            alts.append(None)
        words.append(tok)
        clauses.append(clause)
        spans.append((start, m.end()))
    return Tokens(
        tuple(words), tuple(alts), tuple(clauses), tuple(spans), tuple(elongated), frozenset(hashtags)
    )


def term_tokens(term: str) -> list[str]:
    """A lexicon term as the tokens a message would have, keeping a trailing '*' (prefix) marker."""
    out: list[str] = []
    for raw in fold(term).split():
        star = raw.endswith("*")
        core = raw.rstrip("*")
        if core in ("...", "…"):
            out.append("...")
            continue
        parts = [t for t in _TOKEN.findall(core) if t[0] not in _BREAK_CHARS]
        if not parts:
            continue
        if star:
            parts[-1] += "*"
        out.extend(parts)
    return out
