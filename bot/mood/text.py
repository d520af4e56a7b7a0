"""Text normalisation for mood: case, accents, elongations, tokens with their clause and span."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Accents fold one character to one character, so spans in the folded text are spans in the original.
_ACCENTED = "áàâäãåéèêëíìîïóòôöõúùûüñçýÿ’‘´`"
_FOLD = dict(zip(_ACCENTED, "aaaaaaeeeeiiiiooooouuuuncyy" + "'" * 4, strict=True))
# Only the accented characters are looked at: str.translate() would look up every character of a
# message that has any non-ASCII one (an emoji is enough), ~4x slower on a tweet.
_ACCENT = re.compile(f"[{_ACCENTED}]")
# URLs and @handles say nothing about mood and their capitals are not shouting.
_NOISE = re.compile(r"https?://\S+|www\.\S+|@\w+")
_TOKEN = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*|[.!?;:,\n()]+|[¡¿]")
# A masked swearword: letters with '*' or '$' in or after them ("f*ck", "a**hole", "pi$$ed", "f***"),
# or '@ ! 0 1 3 4' after at most 4 letters and before more ("sh!t", "b1tch"; not "hello!world").
# The language's lexicon tells which word it hides.
_TOKEN_OR_MASKED = re.compile(
    r"[^\W\d_]+[*$]+[^\W\d_]*(?:[*$]+[^\W\d_]*)*|[^\W\d_]{1,4}[@!0134]+[^\W\d_]+|" + _TOKEN.pattern
)
_HAS_MASK = re.compile(r"[^\W\d_](?:[*$]|[@!0134][^\W\d_])")
_MASK_CHARS = re.compile(r"[*$@!0134]")  # no mask without one of these: a much cheaper first look
# Folded ASCII text has no letters but a-z: these say what _TOKEN and _RUN3 say, several times faster
# than their Unicode classes.
_TOKEN_ASCII = re.compile(r"[a-z]+(?:'[a-z]+)*|[.!?;:,\n()]+")
_RUN3_ASCII = re.compile(r"([a-z])\1\1")
# Words inside a #CamelCase hashtag: "#CantSeeShit" -> cant, see, shit.
_CAMEL = re.compile(r"[A-ZÀ-ÖØ-Þ]+(?![a-zß-ÿ])|[A-ZÀ-ÖØ-Þ]?[a-zß-ÿ]+")
_RUN3 = re.compile(r"([^\W\d_])\1{2,}")
_BREAK_CHARS = frozenset(".!?;:,\n()¡¿")


def fold(text: str) -> str:
    """Lower case without accents; same length as the input for the scripts Relevo serves."""
    lowered = text.lower()
    if len(lowered) != len(text):  # a few characters (e.g. 'İ') grow when lowered; keep spans honest
        lowered = "".join(c.lower()[:1] for c in text)
    if lowered.isascii() and "`" not in lowered:  # nothing to fold ('`' is the one ASCII key of _FOLD)
        return lowered
    return _ACCENT.sub(_fold_one, lowered)


def _fold_one(m: re.Match[str]) -> str:
    return _FOLD[m.group()]


def strip_noise(text: str) -> str:
    """Blank out URLs and @handles, keeping every other character in place."""
    if "@" not in text and "http" not in text and "www." not in text:
        return text  # most messages: these searches are cheaper than the pattern
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
    masked: frozenset[int] = frozenset()  # indexes of masked words ("f*ck"): the lexicon unmasks them


def tokenize(folded: str, original: str | None = None) -> Tokens:
    """Split folded text into words; punctuation only starts a new clause (negation stops there).

    Given the original text too, a #CamelCase hashtag is read as its words ("#FedUp" -> fed, up).
    """
    words: list[str] = []
    alts: list[str | None] = []
    clauses: list[int] = []
    spans: list[tuple[int, int]] = []
    elongated: list[int] = []
    hashtags: set[int] = set()
    masked: set[int] = set()
    clause = 0
    # Most messages have none of these: skip the per-word checks for them (this loop is the hot path).
    plain = folded.isascii()
    check_runs = (_RUN3_ASCII if plain else _RUN3).search(folded) is not None
    check_tags = "#" in folded
    check_masks = _MASK_CHARS.search(folded) is not None and _HAS_MASK.search(folded) is not None
    pattern = _TOKEN_OR_MASKED if check_masks else _TOKEN_ASCII if plain else _TOKEN
    for m in pattern.finditer(folded):
        tok = m.group()
        if tok[0] in _BREAK_CHARS:
            clause += 1
            continue
        start = m.start()
        tag = check_tags and start > 0 and folded[start - 1] == "#"
        if tag:
            parts = _camel_parts(original, start, m.end()) if original is not None else []
            if len(parts) > 1:  # its own clause: "sin paquete #QueVergüenza" is not a negated shame
                clause += 1
                for s, e in parts:
                    hashtags.add(len(words))
                    words.append(folded[s:e])
                    alts.append(None)
                    clauses.append(clause)
                    spans.append((s, e))
                clause += 1
                continue
            hashtags.add(len(words))
        if check_masks and not tok.replace("'", "").isalpha():
            masked.add(len(words))
        # Three of one letter and nothing else is an acronym ("BBB", "AAA"), not a stretched word.
        if check_runs and _RUN3.search(tok) and not (len(tok) == 3 and tok[0] == tok[1] == tok[2]):
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
        tuple(words),
        tuple(alts),
        tuple(clauses),
        tuple(spans),
        tuple(elongated),
        frozenset(hashtags),
        frozenset(masked),
    )


def _camel_parts(original: str, start: int, end: int) -> list[tuple[int, int]]:
    """Spans of the words of a #CamelCase hashtag; one span (or none) when it is not CamelCase."""
    tag = original[start:end]
    if tag.islower() or tag.isupper():
        return []
    return [(start + m.start(), start + m.end()) for m in _CAMEL.finditer(tag)]


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
