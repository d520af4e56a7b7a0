"""Text normalisation for mood: case, accents, elongations, tokens with their clause and span."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import NamedTuple, overload

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
# Whether a message has a masked word: a letter, then '*' or '$', or one of '@ ! 0 1 3 4' and a letter. Written
# from the mask character, which the search looks for first: most messages have none, and '!' or a
# digit in the others is seldom right after a letter.
_HAS_MASK = re.compile(r"[*$@!0134](?<=[^\W\d_].)(?:(?<=[*$])|(?=[^\W\d_]))")
# Folded ASCII text has no letters but a-z: these say what _TOKEN and _RUN3 say, several times faster
# than their Unicode classes.
_TOKEN_ASCII = re.compile(r"[a-z]+(?:'[a-z]+)*|[.!?;:,\n()]+")
_RUN3_ASCII = re.compile(r"([a-z])\1\1")
# Words inside a #CamelCase hashtag: "#CantSeeShit" -> cant, see, shit.
_CAMEL = re.compile(r"[A-ZÀ-ÖØ-Þ]+(?![a-zß-ÿ])|[A-ZÀ-ÖØ-Þ]?[a-zß-ÿ]+")
_RUN3 = re.compile(r"([^\W\d_])\1{2,}")
# Folded text has no capitals, and few letters but a-z once accents are folded: a run of a-z, or any
# three of one non-ASCII character (the search skips ASCII text fast) with _RUN3 to tell if it is one of
# letters ("😂😂😂" is not). Together they say what _RUN3 says, faster than its Unicode class.
_RUN3_OTHER = re.compile(r"([^\x00-\x7f])\1\1")
_BREAK_CHARS = frozenset(".!?;:,\n()¡¿")
# _TOKEN and _TOKEN_ASCII with the word as a group: findall() gives each word, and '' for punctuation,
# without a match object each.
_WORD_OR_BREAK = re.compile(r"([^\W\d_]+(?:'[^\W\d_]+)*)|[.!?;:,\n()]+|[¡¿]")
_WORD_OR_BREAK_ASCII = re.compile(r"([a-z]+(?:'[a-z]+)*)|[.!?;:,\n()]+")


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


class _Spans(Sequence[tuple[int, int]]):
    """The spans of a message's words, found when asked for: most messages show no evidence.

    For words as tokenize() finds them when it keeps every token as written: there is no letter
    between two words, so each word starts where the text next has it.
    """

    __slots__ = ("_at", "_folded", "_found", "_words")

    def __init__(self, folded: str, words: tuple[str, ...]) -> None:
        self._folded = folded
        self._words = words
        self._found: list[tuple[int, int]] = []
        self._at = 0  # where the last span found ends

    def __len__(self) -> int:
        return len(self._words)

    @overload
    def __getitem__(self, i: int) -> tuple[int, int]: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[tuple[int, int]]: ...

    def __getitem__(self, i: int | slice) -> tuple[int, int] | Sequence[tuple[int, int]]:
        found = self._found
        wanted = i + 1 if isinstance(i, int) and i >= 0 else len(self._words)
        if len(found) < wanted:
            folded, at = self._folded, self._at
            for word in self._words[len(found) : wanted]:
                start = folded.find(word, at)
                at = start + len(word)
                found.append((start, at))
            self._at = at
        return found[i]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self[:])


class Tokens(NamedTuple):  # not a frozen dataclass: every message makes one, and this costs a third
    """The words of a message, each with its folded forms, clause number and span in the original."""

    words: tuple[str, ...]
    alts: tuple[str | None, ...]  # elongation collapsed to one letter ("noooo" -> "no"), else None
    clauses: tuple[int, ...]  # only told apart and in order: not a count of clauses
    spans: Sequence[tuple[int, int]]
    elongated: tuple[int, ...]  # indexes of words written with a letter three times or more
    hashtags: frozenset[int]  # indexes of #hashtag words: names, so not shouting nor elongation
    masked: frozenset[int] = frozenset()  # indexes of masked words ("f*ck"): the lexicon unmasks them


def tokenize(folded: str, original: str | None = None) -> Tokens:
    """Split folded text into words; punctuation only starts a new clause (negation stops there).

    Given the original text too, a #CamelCase hashtag is read as its words ("#FedUp" -> fed, up).
    """
    plain = folded.isascii()
    check_runs = _RUN3_ASCII.search(folded) is not None or (
        not plain and _RUN3_OTHER.search(folded) is not None and _RUN3.search(folded) is not None
    )
    check_masks = _HAS_MASK.search(folded) is not None
    if check_runs or check_masks or "#" in folded:
        return _tokenize_each(folded, original, plain, check_runs, check_masks)
    # Most messages: every token is kept as it is written, and none is a hashtag. The words and their
    # clauses, in one pass that makes no match object; their spans only when asked for.
    words: list[str] = []
    clauses: list[int] = []
    clause = 0
    for word in (_WORD_OR_BREAK_ASCII if plain else _WORD_OR_BREAK).findall(folded):
        if word:
            words.append(word)
            clauses.append(clause)
        else:
            clause += 1
    found = tuple(words)
    return Tokens(found, (None,) * len(found), tuple(clauses), _Spans(folded, found), (), frozenset())


def _tokenize_each(folded: str, original: str | None, plain: bool, check_runs: bool, check_masks: bool) -> Tokens:
    """tokenize() one token at a time, for a message with a stretched or masked word to rewrite, or a
    #CamelCase hashtag to read as its words."""
    words: list[str] = []
    alts: list[str | None] = []
    clauses: list[int] = []
    spans: list[tuple[int, int]] = []
    elongated: list[int] = []
    hashtags: set[int] = set()
    masked: set[int] = set()
    clause = 0
    check_tags = "#" in folded
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
    return [m.span() for m in _CAMEL.finditer(original, start, end)]


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
