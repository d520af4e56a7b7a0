"""The mood detector: a score in [0, 1] per message and per conversation, with the evidence behind it."""

from __future__ import annotations

import hashlib
import logging
import re
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import count, pairwise
from operator import attrgetter
from pathlib import Path
from typing import NamedTuple

from rapidfuzz import fuzz, process

from bot.mood.lexicon import (
    GROUP_LABELS,
    Candidates,
    Language,
    MoodConfigError,
    Signals,
    Term,
    load_folder,
)
from bot.mood.text import Tokens, fold, strip_noise, tokenize

logger = logging.getLogger(__name__)

MAX_CHARS = 4000  # longer messages are scored on their start: bounded time per message
_PUNCT_RUN = re.compile(r"[!?¡¿]{2,}")
_CAPS3 = re.compile(r"[A-ZÀ-ÖØ-Þ]{3,}")  # a cheap pre-check: no capitalised words, no shouting
_GAP = 3  # words a '...' in a lexicon phrase may skip
_DIGIT = re.compile(r"\d")
# Messages remembered with their score and words, least recently used dropped first. Each of them is
# looked at again on up to `conversation_messages` later turns of its conversation: the bound is
# meant to hold the recent messages of a thousand or so open conversations.
_RECENT_LIMIT = 20_000
# What is kept of a remembered message's words for the repeat check: with its key a digest, the memory
# stays ~15 MB at the limit whatever customers paste (it was ~160 MB with 4 000-character messages).
_REPEAT_CHARS = 300
# Groups that weigh more when the clause is aimed at someone ("you are useless", "sois unos inútiles").
_AIMED = frozenset({"negative", "insult", "profanity"})
# What praise must sit next to to be sarcasm: "great service, charged me twice"; not "great goal, fucking hell".
_COMPLAINTS = frozenset({"negative", "dissatisfaction", "threat_leave", "threat_complain", "positive"})
# Threats that, asked as a question ("how do I cancel", "where can I complain"), are requests.
_ASKABLE = frozenset({"threat_leave", "threat_complain"})
# A swearword or insult after a negation is still one: "no funciona esta mierda", "don't be an idiot".
_NOT_NEGATED = frozenset({"insult", "profanity"})
_CANDIDATE_CACHE = 50_000  # distinct words remembered per language
_NO_CANDIDATES: Candidates = ((), {})  # shared by every word that starts no term: told apart by identity

__all__ = ["MoodConfigError", "MoodDetector", "MoodReading"]


@dataclass(frozen=True)
class MoodReading:
    score: float  # this message, [0, 1]
    conversation: float  # the conversation so far including this message, recent messages weigh more
    evidence: tuple[str, ...]  # what raised it, e.g. 'insult: "inútil"', 'shouting', '"!!!"'
    upset: bool  # conversation >= threshold
    lang: str = ""  # the language the message was read in


# Named tuples, not frozen dataclasses: a message makes several and they cost a third as much to build.
class _Seen(NamedTuple):
    """A message as it was read on its turn: what it weighed, and its words for the repeat check."""

    score: float
    words: str


class _Hit(NamedTuple):
    weight: float
    evidence: str
    irony: bool = False  # praise that counts only next to a complaint
    complaint: bool = False  # a complaint about what happened (not swearing, shouting, emoji)


def combine(weights: Sequence[float]) -> float:
    """Independent signals: each weight is how sure that signal alone makes us, so 1 - prod(1 - w)."""
    rest = 1.0
    for w in weights:
        rest *= 1.0 - min(max(w, 0.0), 1.0)
    return 1.0 - rest


class MoodDetector:
    def __init__(
        self,
        languages: dict[str, Language],
        signals: Signals,
        threshold: float = 0.5,
        default_lang: str = "en",
    ) -> None:
        self.languages = languages
        self.signals = signals
        self.threshold = threshold
        self.default_lang = default_lang if default_lang in languages else next(iter(languages))
        self._recent: OrderedDict[bytes, _Seen] = OrderedDict()
        # text -> _key(text) of the texts met lately (see _key_of), the oldest dropped first.
        self._keys: OrderedDict[str, bytes] = OrderedDict()
        # Every emoji is one character (the loader keeps the first): a set finds them far faster than
        # a pattern of the message.
        self._emoji_chars = frozenset([*signals.emoji, *signals.calm_emoji, *signals.irony_emoji])
        # No emoji below the first of them: most non-ASCII messages (accents, '¿') have no character from
        # there up, and a pattern of that range tells so faster than the set.
        self._any_emoji = (
            re.compile(f"[{re.escape(min(self._emoji_chars))}-\U0010ffff]") if self._emoji_chars else None
        )
        # Settings every message looks at, read once: Signals.__getitem__ is a Python call.
        self._history_limit = int(signals["conversation_messages"])
        self._negation_window = int(signals["negation_window"])
        self._intensifier_window = int(signals["intensifier_window"])
        self._count_again_weight = signals["count_again_weight"]
        self._shouting_min_words = signals["shouting_min_words"]
        self._repeat_limit = 100.0 * signals["repeated_question_similarity"]

    @classmethod
    def from_dir(cls, folder: Path, threshold: float = 0.5, default_lang: str = "en") -> MoodDetector:
        languages, signals = load_folder(Path(folder))
        return cls(languages, signals, threshold, default_lang)

    # --- public API -------------------------------------------------------------------------------

    def score(self, text: str, lang: str | None = None) -> MoodReading:
        """One message on its own."""
        return self.assess(text, lang)

    def assess(
        self,
        text: str,
        lang: str | None,
        history: Sequence[str] = (),
        after_bot_answer: bool = False,
    ) -> MoodReading:
        """This message in its conversation: history is the customer's earlier messages, oldest first."""
        code, hits, words = self._read(text, lang, after_bot_answer)
        score = combine([h.weight for h in hits])
        self._remember(self._key_of(text), _Seen(score, words))
        # Each earlier message is looked up once, for both the repeat check and the conversation score.
        earlier = [self._seen(e, lang) for e in history[-self._history_limit :]]
        repeat = self._repeated(text, words, earlier)
        if repeat:
            hits.append(repeat)
            score = combine([h.weight for h in hits])
        conversation = self._conversation(score, earlier)
        if len(hits) > 1:
            hits.sort(key=_by_weight, reverse=True)  # stable: of equal weights, the first found first
        return MoodReading(
            score=round(score, 4),
            conversation=round(conversation, 4),
            evidence=tuple(dict.fromkeys(map(_evidence_of, hits))),
            upset=conversation >= self.threshold,
            lang=code,
        )

    def detect_lang(self, text: str) -> str | None:
        """The language whose common words the text uses most; None when it cannot tell."""
        return self._detect(tokenize(fold(strip_noise(text[:MAX_CHARS]))).words, text)

    def _detect(self, words: Sequence[str], text: str) -> str | None:
        counts = {code: sum(1 for w in words if w in lg.markers) for code, lg in self.languages.items()}
        if "es" in counts and any(c in text for c in "ñ¿¡"):
            counts["es"] += 2
        best = max(counts.values(), default=0)
        winners = [c for c, n in counts.items() if n == best]
        return winners[0] if best > 0 and len(winners) == 1 else None

    # --- one message ------------------------------------------------------------------------------

    def _read(self, text: str, lang: str | None, after_answer: bool) -> tuple[str, list[_Hit], str]:
        """The language read in, the hits, and the start of the message's words joined by spaces."""
        text = strip_noise(text[:MAX_CHARS])
        tokens = tokenize(fold(text), text)
        words = " ".join(tokens.words)[:_REPEAT_CHARS]
        code = lang if lang in self.languages else self._detect(tokens.words, text)
        shared, emoji_calm = self._shared_hits(text, tokens)
        if code is not None:
            hits, calm = self._lexicon_hits(self.languages[code], text, tokens, after_answer)
        else:
            # Too short to tell the language ("inútil!!", "useless"): read it in each, keep the worst.
            best: tuple[float, str, list[_Hit], float] = (-1.0, self.default_lang, [], 1.0)
            for c, language in self.languages.items():
                found, factor = self._lexicon_hits(language, text, tokens, after_answer)
                s = combine([h.weight for h in found if not h.irony]) * factor
                if s > best[0]:
                    best = (s, c, found, factor)
            _, code, hits, calm = best
        if shared:
            hits = shared + hits
        plain = [h for h in hits if not h.irony]
        if len(plain) < len(hits):
            if any(h.complaint and h.weight >= self.signals["irony_needs"] for h in plain):
                # Praise next to a complaint is sarcasm: "great service, charged me twice", "excelente
                # servicio, otra vez sin luz"; its thanks and praise then calm nothing.
                return code, hits, words
            hits = plain
        calm *= emoji_calm
        if calm < 1.0:  # praise or laughter: "fucking amazing!!!" is not anger
            hits = [_Hit(h.weight * calm, h.evidence) for h in hits]
        return code, hits, words

    def _lexicon_hits(
        self, lg: Language, text: str, tokens: Tokens, after_answer: bool
    ) -> tuple[list[_Hit], float]:
        """Lexicon hits, and the factor (<= 1) that praise or laughter in the message puts on every signal."""
        spelled = lg.spellings.get
        words = list(map(spelled, tokens.words, tokens.words))
        # Most messages have no elongated word, so no alternative spelling to look at.
        plain = tokens.alts.count(None) == len(words)
        alts = tokens.alts if plain else tuple(spelled(a, a) if a else None for a in tokens.alts)
        for k in tokens.masked:  # "f*ck", "sh!t", "m*erda": the swearword of this language it hides
            words[k] = lg.unmask(words[k])
        hits: list[_Hit] = []
        seen: set[str] = set()
        calm = 1.0
        # Most words start no term: those the language already knows as such are skipped in one pass,
        # which keeps what the others start (None: not known yet, or a word with an alternative).
        known = lg.candidates
        hot: list[tuple[int, Candidates | None]]
        if plain:
            # Of the words that only start phrases ("the", "de"), most are not followed by a second word
            # of one: those are left out here too, the next word taken whatever its clause.
            nexts = words[1:]
            nexts.append("")
            hot = [
                (i, c)
                for i, c, after in zip(count(), map(known.get, words), nexts)
                if c is not _NO_CANDIDATES and (c is None or c[0] or after in c[1])
            ]
        else:
            hot = [(i, None) for i, w in enumerate(words) if alts[i] is not None or known.get(w) is not _NO_CANDIDATES]
        question = "?" in text
        clauses = tokens.clauses
        last = len(words) - 1
        done = 0  # words before this are inside a term already found
        for i, candidates in hot:
            if i < done:
                continue
            if candidates is None:
                candidates = _candidates(lg, words[i], alts[i])
                if candidates is _NO_CANDIDATES:
                    continue
            # Most words that start a phrase ("the", "de") are not followed by its second word: then
            # they start nothing here, and that is told before looking for the best term.
            if not candidates[0] and not (
                i < last and clauses[i + 1] == clauses[i]
                and (words[i + 1] in candidates[1] or alts[i + 1] in candidates[1])
            ):
                continue
            # Clause numbers only grow along the message: the clause ends where the next one starts.
            found = _best_term(candidates, words, alts, bisect_right(clauses, clauses[i]), i)
            if found is None:
                continue
            term, end = found
            hit, start = self._weigh(lg, term, words, tokens.clauses, i, after_answer, question)
            if term.group == "calm":
                calm *= 1.0 - hit
            elif hit > 0:
                shown = text[tokens.spans[start][0] : tokens.spans[end - 1][1]]
                label = f'{GROUP_LABELS[term.group]}: "{shown}"'
                if term.text not in seen:
                    seen.add(term.text)
                    hits.append(_Hit(hit, label, term.group == "irony", term.group in _COMPLAINTS))
            done = end
        # Most messages have no count written out or no digit: two cheap looks before the walk.
        if (
            lg.numbers and self._count_again_weight > 0 and not lg.numbers.keys().isdisjoint(words)
            and _DIGIT.search(text)
        ):
            again = self._count_again(lg, text, tokens, words)
            if again:
                hits.append(again)
        return hits, calm

    def _count_again(self, lg: Language, text: str, tokens: Tokens, words: list[str]) -> _Hit | None:
        """A count in digits written out again, alone as a sentence: "hace 9 días. Nueve.", "40 días
        esperando. CUARENTA." The customer insists on how bad it is. Alone: "Two questions: 1)..." is not."""
        clauses = tokens.clauses
        for i, w in enumerate(words):
            number = lg.numbers.get(w)
            if number is None or (i > 0 and clauses[i - 1] == clauses[i]):
                continue
            end = bisect_right(clauses, clauses[i])
            if end - i == 1 and re.search(rf"(?<!\d){number}(?!\d)", text):
                s, e = tokens.spans[i]
                return _Hit(self.signals["count_again_weight"], f'insisting: "{text[s:e]}"', complaint=True)
        return None

    def _weigh(
        self, lg: Language, term: Term, words: list[str], clauses: Sequence[int], i: int, after: bool,
        question: bool,
    ) -> tuple[float, int]:
        """The term's weight at words[i] after negation and intensifiers, and where its evidence starts."""
        group = term.group
        clause = clauses[i]
        start = bisect_left(clauses, clause)  # the first word of the clause: windows stop there
        negator = next(
            (
                j
                for j in range(max(start, i - self._negation_window), i)
                if lg.is_negator(words[j]) and words[j + 1] not in lg.not_negating
            ),
            -1,
        )
        if group == "positive":  # only a negated positive counts, shown with its negation
            if negator < 0:
                return 0.0, i  # most positive words: "help", "working"
            weight, i = term.weight, negator
        elif group in _NOT_NEGATED:
            weight = term.weight
        else:
            weight = 0.0 if negator >= 0 else term.weight
        if group in _ASKABLE:
            opener = words[start]
            if opener in lg.asking or (question and opener in lg.conditional):
                # "¿Cómo me doy de baja?", "where can I file a complaint?", "si me doy de baja, ¿pierdo
                # los puntos?": a question the FAQ answers
                weight = 0.0
        if group == "dissatisfaction" and not after:
            weight *= self.signals["dissatisfaction_without_answer"]
        if weight <= 0:  # nothing to strengthen or soften
            return 0.0, i
        factor = 1.0
        window = words[max(start, i - self._intensifier_window) : i]
        if not lg.intensifiers.keys().isdisjoint(window):
            near = [lg.intensifiers.get(w, 1.0) for w in window]
            # The strongest intensifier, softened by the softest downtoner: "a bit disappointed", "un poco harto".
            factor = max([1.0, *near]) * min([1.0, *near])
        if group in _AIMED and lg.targets and not lg.targets.isdisjoint(words[start : bisect_right(clauses, clause)]):
            factor *= self.signals["target_factor"]
        if lg.reporters and _reported(lg, words[start:i]):
            # "my dad is furious about the bill", "mi jefe dice que sois unos inútiles": told, not felt
            factor *= self.signals["reported_factor"]
        return 1.0 - (1.0 - weight) ** factor, i

    # --- signals that do not depend on the language ---------------------------------------------

    def _shared_hits(self, text: str, tokens: Tokens) -> tuple[list[_Hit], float]:
        """Signals of any language, and the factor (<= 1) that praise or laughter emoji put on every signal."""
        sig = self.signals
        calm = 1.0
        hits: list[_Hit] = []
        if len(_CAPS3.findall(text)) >= self._shouting_min_words and self._shouting(text, tokens):
            hits.append(_Hit(sig["shouting_weight"], "shouting (capitals)"))
        punct = self._punctuation(text)
        if punct:
            hits.append(punct)
        if tokens.elongated:
            s, e = tokens.spans[tokens.elongated[0]]
            hits.append(_Hit(sig["elongation_weight"], f'elongation: "{text[s:e]}"'))
        if self._any_emoji is not None and not text.isascii() and self._any_emoji.search(text):
            found, calm = self._emoji(text)
            hits.extend(found)
        return hits, calm

    def _shouting(self, text: str, tokens: Tokens) -> bool:
        long_words = [
            text[s:e] for i, (s, e) in enumerate(tokens.spans) if e - s >= 3 and i not in tokens.hashtags
        ]
        caps = sum(1 for w in long_words if w.isupper())
        return (
            bool(long_words)
            and caps >= self.signals["shouting_min_words"]
            and caps / len(long_words) >= self.signals["shouting_min_ratio"]
        )

    def _punctuation(self, text: str) -> _Hit | None:
        marks = text.count("!") + text.count("?")
        if not text.isascii():
            marks += text.count("¡") + text.count("¿")
        if marks < 2:
            return None  # most messages: a run needs two marks; counting them is cheaper than the pattern
        best: _Hit | None = None
        for m in _PUNCT_RUN.finditer(text):
            run = m.group()
            bangs = run.count("!") + run.count("¡")
            if bangs >= 3:
                w = self.signals["exclamation_long_weight"]
            elif bangs >= 1:
                w = self.signals["exclamation_weight"]
            elif len(run) >= 3:
                w = self.signals["question_run_weight"]
            else:
                continue
            if best is None or w > best.weight:
                best = _Hit(w, f'"{run}"')
        return best

    def _emoji(self, text: str) -> tuple[list[_Hit], float]:
        counts = {ch: text.count(ch) for ch in sorted(self._emoji_chars.intersection(text), key=text.index)}
        repeats = int(self.signals["emoji_repeats"])
        hits = []
        calm = 1.0
        for ch, n in counts.items():
            upset = self.signals.emoji.get(ch)
            irony = self.signals.irony_emoji.get(ch)
            if upset is not None:
                weight, shown = upset
                hits.append(_Hit(1.0 - (1.0 - weight) ** min(n, repeats), f"emoji: {shown}"))
            elif irony is not None:
                hits.append(_Hit(irony[0], f"sarcasm: {irony[1] * min(n, repeats)}", True))
            else:  # praise or laughter: counted once, like a calm word
                calm *= 1.0 - self.signals.calm_emoji[ch][0]
        return hits, calm

    # --- the conversation -------------------------------------------------------------------------

    def _repeated(self, text: str, mine: str, earlier: Sequence[_Seen]) -> _Hit | None:
        """The customer asks again what they asked before: the bot's answer did not help."""
        if not earlier or mine.count(" ") < 2:  # "hola", "sí", "ok" repeat without meaning anything
            return None
        # Any earlier message as similar will do: the most similar, found in one call (the same
        # fuzz.ratio scores as one call per message, which cost twice as much for a long conversation).
        best = process.extractOne(mine, list(map(_words_of, earlier)), scorer=fuzz.ratio, processor=None)
        if best is not None and best[1] >= self._repeat_limit:
            shown = text.strip()[:60]
            return _Hit(self.signals["repeated_question_weight"], f'repeated question: "{shown}"')
        return None

    def _conversation(self, score: float, earlier: Sequence[_Seen]) -> float:
        """Noisy-OR of the recent messages, each older one damped by the decay: anger adds up, then fades."""
        rest = 1.0 - score
        if any(map(_score_of, earlier)):
            decay = self.signals["conversation_decay"]
            for age, seen in enumerate(reversed(earlier), start=1):
                if seen.score:  # a calm message leaves the rest as it is (1 - 0 * decay**age is 1)
                    rest *= 1.0 - seen.score * decay**age
        return 1.0 - rest

    def _seen(self, text: str, lang: str | None) -> _Seen:
        """An earlier message as read on its turn; one not remembered (a restart) is read again, as
        if it had not followed an answer."""
        key = self._key_of(text)
        seen = self._recent.get(key)
        if seen is None:
            _, hits, words = self._read(text, lang, False)
            seen = _Seen(combine([h.weight for h in hits]), words)
            self._remember(key, seen)
        else:
            self._recent.move_to_end(key)
        return seen

    def _key_of(self, text: str) -> bytes:
        """_key(text), found again for a text seen lately: the earlier messages of a conversation come
        back on each of its turns, and the digest costs more than the look-up."""
        key = self._keys.get(text)
        if key is None:
            key = _key(text)
            # Bounded as _recent is: _RECENT_LIMIT texts of _REPEAT_CHARS at most, a few MB of chat messages.
            if len(text) <= _REPEAT_CHARS:
                if len(self._keys) >= _RECENT_LIMIT:
                    self._keys.popitem(last=False)
                self._keys[text] = key
        return key

    def _remember(self, key: bytes, seen: _Seen) -> None:
        self._recent[key] = seen
        self._recent.move_to_end(key)
        if len(self._recent) > _RECENT_LIMIT:
            self._recent.popitem(last=False)


_by_weight = attrgetter("weight")
_score_of = attrgetter("score")
_words_of = attrgetter("words")
_evidence_of = attrgetter("evidence")


def _key(text: str) -> bytes:
    # Channels may store a message with the spaces around it that the engine strips before reading it.
    # Not the language: a message keeps the reading of its own turn when the conversation's language
    # changes later ("hola" then English questions).
    return hashlib.blake2b(text.strip().encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _best_term(
    candidates: Candidates, words: list[str], alts: Sequence[str | None], end_of_clause: int, i: int
) -> tuple[Term, int] | None:
    """The longest term starting at words[i]; a phrase does not run over punctuation ("hate. This")."""
    always, by_second = candidates
    after = words[i + 1] if i + 1 < end_of_clause else None
    # Most phrases fail on their second word ("no me ...", "the worst"): only those whose second word
    # is the next word (or a '...' gap or 'prefix*') are tried.
    found: tuple[Term, ...] = ()
    if after is not None and by_second:
        found = by_second.get(after, ())
        after_alt = alts[i + 1]
        if after_alt is not None and after_alt != after:
            found = found + by_second.get(after_alt, ())
    best: tuple[Term, int] | None = None
    # `always` match words[i]; `found` match words[i] and the next word: each is matched on from there.
    for matched, terms in ((1, always), (2, found)):
        for term in terms:
            end = (i + matched if len(term.pattern) == matched
                   else _match(term.pattern, matched, words, alts, i + matched, end_of_clause))
            if end > 0 and (best is None or end > best[1] or (end == best[1] and _precedes(term, best[0]))):
                best = (term, end)
    return best


def _precedes(a: Term, b: Term) -> bool:
    """Of two terms matching the same words, the longer pattern, then the one with fewer gaps."""
    return (-len(a.pattern), a.pattern.count("...")) < (-len(b.pattern), b.pattern.count("..."))


def _reported(lg: Language, before: list[str]) -> bool:
    """Whether a reporter, a word or two-word phrase ("my dad"), is among the words before a term."""
    if not lg.reporters.isdisjoint(before):
        return True
    if lg.reporter_starts.isdisjoint(before[:-1]):  # most clauses: no phrase to put together
        return False
    return any(f"{a} {b}" in lg.reporters for a, b in pairwise(before))


def _candidates(lg: Language, word: str, alt: str | None) -> Candidates:
    """Terms whose first word matches word (or its de-elongated alt), split by their second word."""
    key = word if alt is None else f"{word}\0{alt}"
    found = lg.candidates.get(key)
    if found is None:
        terms: list[Term] = []
        for w in (word, alt) if alt else (word,):
            terms.extend(lg.exact.get(w, ()))
            for n in lg.prefix_lengths:
                if n > len(w):
                    break
                terms.extend(lg.prefix.get(w[:n], ()))
        always: list[Term] = []
        by_second: dict[str, list[Term]] = {}
        for t in terms:
            second = t.pattern[1] if len(t.pattern) > 1 else "..."
            if second == "..." or second.endswith("*"):
                always.append(t)
            else:
                by_second.setdefault(second, []).append(t)
        if len(lg.candidates) >= _CANDIDATE_CACHE:
            lg.candidates.clear()
        found = (tuple(always), {k: tuple(v) for k, v in by_second.items()}) if terms else _NO_CANDIDATES
        lg.candidates[key] = found
    return found


def _match(
    pattern: tuple[str, ...], k: int, words: list[str], alts: Sequence[str | None], j: int, stop: int
) -> int:
    """End index of pattern[k:] matched from words[j] without reaching words[stop], or -1."""
    # Word by word; only a '...' gap, which may skip 0 to _GAP words, tries the rest in several places.
    while k < len(pattern):
        p = pattern[k]
        if p == "...":
            after = pattern[k + 1]  # a word: a gap is never last
            plain = after != "..." and after[-1] != "*"
            for skip in range(_GAP + 1):
                at = j + skip
                # Most places do not have the word after the gap: told without trying the rest there.
                if plain and (at >= stop or (words[at] != after and alts[at] != after)):
                    continue
                end = _match(pattern, k + 1, words, alts, at, stop)
                if end > 0:
                    return end
            return -1
        if j >= stop:
            return -1
        alt = alts[j]
        if p[-1] == "*":
            stem = p[:-1]
            if not (words[j].startswith(stem) or (alt is not None and alt.startswith(stem))):
                return -1
        elif words[j] != p and alt != p:
            return -1
        k += 1
        j += 1
    return j
