"""The mood detector's shortcuts say what the plain definitions say: tokenizer paths, pre-checks,
phrase matching, the repeat check and the memory of earlier messages. No timings here."""

from __future__ import annotations

import csv
import random
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from rapidfuzz import fuzz

from bot.mood import MoodDetector
from bot.mood import text as mood_text
from bot.mood.detector import _GAP, _key, _match, _Seen
from bot.mood.text import Tokens, fold, strip_noise, tokenize

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config" / "mood"

# The plain definitions the shortcuts stand for.
HAS_MASK = re.compile(r"[^\W\d_](?:[*$]|[@!0134][^\W\d_])")
RUN3 = re.compile(r"([^\W\d_])\1{2,}")

EDGE = [
    "", " ", "!!", "¿¿??", "...", "a", "I", "İSTANBUL is TERRIBLE", "ǅ test", "ﬁne service is SHIT",
    "NOOOO no funciona", "sooooo annoying", "f*ck", "F*CK YOU", "sh!t", "b1tch", "m*erda", "pi$$ed",
    "a**hole", "hello!world", "sh!!t", "$5 off", "#FedUp #QueVergüenza #CantSeeShit #BBB", "#ALLCAPS #lowercase",
    "sin paquete #QueVergüenza, otra vez #FooBar #BazQux y #Ok.", "#FooΣbar σ", "#ΣίγμαTest x",
    "AAA BBB", "hace 9 días. Nueve.", "😡😡😡 😂😂😂 great service 👏", "rock'n'roll it's 'quoted' isn''t",
    "`quoted` ´acute´ ‘curly’ it’s shit", "ÀÉÎÕÜ ñandú ÇA ßßß", "emoji👍between😡words", "tab\tseparated\nlines",
    "https://example.com/SHIT @SomeHandle www.FUCK.com useless", "m²² x³ ½½½",
]


def _texts() -> list[str]:
    texts = list(EDGE)
    for name in ("mood_support_dev.csv", "mood_support_blind.csv"):
        with (ROOT / "bench" / name).open(encoding="utf-8-sig", newline="") as f:
            texts += [row["text"] for row in csv.DictReader(f)]
    rng = random.Random(5)
    alphabet = "aAbBoO ñÑßİıΣσ😂1_0*$@!.,?¡¿#'éÉ"
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 14))) for _ in range(3000)]
    texts += [t.upper() for t in texts[:300]] + ["#" + t.title().replace(" ", " #") for t in texts[:300]]
    return texts


TEXTS = _texts()


def _plain(tokens: Tokens) -> tuple[object, ...]:
    """Tokens with clause numbers as their rank: only equality and order of clauses mean anything."""
    rank = {c: k for k, c in enumerate(sorted(set(tokens.clauses)))}
    assert list(tokens.clauses) == sorted(tokens.clauses)
    return (
        tokens.words,
        tokens.alts,
        tuple(rank[c] for c in tokens.clauses),
        tuple(tokens.spans),
        tokens.elongated,
        tokens.hashtags,
        tokens.masked,
    )


def test_every_tokenizer_path_reads_as_the_per_token_one() -> None:
    for text in TEXTS:
        original = strip_noise(text)
        folded = fold(original)
        plain = folded.isascii()
        runs = RUN3.search(folded) is not None
        masks = HAS_MASK.search(folded) is not None
        for given in (original, None):
            fast = tokenize(folded, given)
            each = mood_text._tokenize_each(folded, given, plain, runs, masks)
            assert _plain(fast) == _plain(each), text


def test_pre_checks_say_what_the_unicode_patterns_say() -> None:
    for text in TEXTS:
        folded = fold(text)
        plain = folded.isascii()
        runs = mood_text._RUN3_ASCII.search(folded) is not None or (
            not plain and mood_text._RUN3_OTHER.search(folded) is not None and RUN3.search(folded) is not None
        )
        assert runs == (RUN3.search(folded) is not None), text
        assert (mood_text._HAS_MASK.search(folded) is not None) == (HAS_MASK.search(folded) is not None), text


def test_spans_found_late_are_the_spans() -> None:
    for text in TEXTS:
        folded = fold(strip_noise(text))
        tokens = tokenize(folded, text)
        spans = tuple(tokens.spans)
        assert len(spans) == len(tokens.words)
        if spans:  # asked for out of order, from a fresh reading
            late = tokenize(folded, text).spans
            assert [late[len(spans) // 2], late[0], late[-1]] == [spans[len(spans) // 2], spans[0], spans[-1]]
        for (s, e), word, alt in zip(spans, tokens.words, tokens.alts, strict=True):
            assert folded[s:e] == word or alt is not None, text  # only a stretched word is rewritten


def _match_reference(
    pattern: tuple[str, ...], k: int, words: list[str], alts: Sequence[str | None], j: int, stop: int
) -> int:
    """The phrase matcher as first written: recursive, trying every skip of a gap."""

    def matches(p: str, w: str) -> bool:
        return w.startswith(p[:-1]) if p.endswith("*") else w == p

    if k == len(pattern):
        return j
    p = pattern[k]
    if p == "...":
        for skip in range(_GAP + 1):
            end = _match_reference(pattern, k + 1, words, alts, j + skip, stop)
            if end > 0:
                return end
        return -1
    if j >= stop:
        return -1
    if matches(p, words[j]) or (alts[j] is not None and matches(p, alts[j] or "")):
        return _match_reference(pattern, k + 1, words, alts, j + 1, stop)
    return -1


def test_phrases_match_as_the_recursive_definition() -> None:
    rng = random.Random(3)
    vocabulary = ["no", "me", "sirve", "de", "nada", "mierda", "harto", "hartos"]
    for _ in range(20000):
        pattern = [rng.choice([*vocabulary, "...", "hart*", "mie*"]) for _ in range(rng.randint(2, 5))]
        if pattern[0] == "..." or pattern[-1] == "...":
            continue
        words = [rng.choice(vocabulary) for _ in range(rng.randint(1, 9))]
        alts = [rng.choice([None, None, *vocabulary]) for _ in words]
        start = rng.randrange(len(words))
        stop = rng.randint(start, len(words))
        args = (tuple(pattern), 1, words, alts, start + 1, stop)
        assert _match(*args) == _match_reference(*args), args


def test_the_one_call_repeat_check_finds_what_each_ratio_finds() -> None:
    detector = MoodDetector.from_dir(CONFIG)
    limit = 100.0 * detector.signals["repeated_question_similarity"]
    rng = random.Random(11)
    alphabet = "abcde fghij"

    def mutate(s: str) -> str:
        chars = list(s)
        for _ in range(rng.randint(0, 4)):
            if chars and rng.random() < 0.4:
                del chars[rng.randrange(len(chars))]
            else:
                chars.insert(rng.randrange(len(chars) + 1), rng.choice(alphabet))
        return "".join(chars)

    at_limit = 0
    for _ in range(20000):
        mine = " ".join("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(3))
        earlier = [mutate(mine) for _ in range(rng.randint(1, 8))]
        scores = [fuzz.ratio(mine, e) for e in earlier]
        at_limit += limit in scores
        seen = [_Seen(0.0, e) for e in earlier]
        found = detector._repeated(mine, mine, seen) is not None
        assert found == any(s >= limit for s in scores), (mine, earlier, scores)
    assert at_limit > 100  # the boundary itself was tried


def test_remembered_keys_are_the_digests_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.mood.detector._RECENT_LIMIT", 5)
    detector = MoodDetector.from_dir(CONFIG)
    texts = [f"  message number {i}\n" for i in range(12)] + ["x" * 400]
    for text in texts:
        assert detector._key_of(text) == _key(text)
        assert detector._key_of(text) == _key(text)  # found again
    assert len(detector._keys) <= 5
    assert "x" * 400 not in detector._keys  # long texts are hashed each time, not kept


@pytest.mark.parametrize("lang", ["en", "es", None])
def test_a_conversation_reads_the_same_with_and_without_the_memory_of_keys(lang: str | None) -> None:
    warm = MoodDetector.from_dir(CONFIG)
    cold = MoodDetector.from_dir(CONFIG)
    sent: list[str] = []
    rng = random.Random(len(lang or ""))
    for turn, text in enumerate(rng.sample(TEXTS[: len(EDGE) + 400], 60)):
        if sent and turn % 7 == 0:
            text = rng.choice(sent).upper() + "?"
        a = warm.assess(text, lang, sent[-10:], turn % 2 == 0)
        cold._keys.clear()  # every digest made again
        b = cold.assess(text, lang, sent[-10:], turn % 2 == 0)
        assert a == b
        sent.append(text)
