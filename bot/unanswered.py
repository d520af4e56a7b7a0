"""The questions the bot could not answer, kept for the people who write the knowledge base.

The engine notes each message it did not understand, each answer a customer said did not help (with the
customer's own words, also when the answer was a suggestion they chose), and each question whose suggestions
the customer passed over (asked for a person, wrote something else or left instead of choosing one);
`relevo faq unanswered` groups them by wording and prints them, or a knowledge-base file to start
from; the supervisor view shows the same (handoff/api/unanswered.py, /api/unanswered). Both leave out what the
knowledge base answers by now (`still_open`). Bounded: the newest MAX_KEPT are kept.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast

import redis.asyncio as aioredis
import yaml
from rapidfuzz import fuzz, process

from faq.model import Action, Decision, KnowledgeBase
from faq.normalize import STOP_WORDS, fold, normalize
from handoff import keys

# not_chosen: the bot offered suggestions ("did you mean ...") and the customer took none of them.
Kind = Literal["not_understood", "not_helpful", "not_chosen"]
KINDS: tuple[Kind, ...] = ("not_understood", "not_helpful", "not_chosen")
LABELS = {"not_understood": "not understood", "not_helpful": "answer did not help",
          "not_chosen": "suggested, none chosen"}  # fmt: skip
MAX_KEPT = 10_000
MAX_TEXT = 300  # a question is what is kept, not an essay pasted into the chat
# Two questions whose folded words overlap this much (token_set_ratio) are the same question asked
# twice ("do you ship to iceland" / "shipping to Iceland?").
SAME_QUESTION = 80.0
MAX_EXAMPLES = 5  # wordings shown per group
_STOP_WORDS = frozenset().union(*STOP_WORDS.values())
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Unanswered:
    kind: Kind
    text: str
    lang: str
    ts: int  # ms
    conversation_id: str = ""
    entry: str = ""  # not_helpful: the entry whose answer did not help
    best: str = ""  # not_understood: the entry the matcher thought closest, and its confidence
    confidence: float = 0.0
    suggested: tuple[str, ...] = ()  # not_chosen: the entries offered, best first (`best`: the first)


class Knowledge(Protocol):
    """What `still_open` needs of faq.library.Library: the knowledge base in use and the bot's decision."""

    @property
    def kb(self) -> KnowledgeBase: ...

    def decide(self, text: str, lang: str | None = None) -> Decision: ...


@dataclass
class Group:
    """One question as customers asked it, most recent wording first."""

    asked: list[tuple[str, str]] = field(default_factory=list)  # (text, language)
    kinds: set[str] = field(default_factory=set)
    entries: set[str] = field(default_factory=set)  # entries that did not help, came closest or were offered
    last_ts: int = 0

    @property
    def count(self) -> int:
        return len(self.asked)


def has_words(text: str) -> bool:
    """Whether there is anything to write an entry for: "❤️" or "🤔" alone is not a question."""
    return bool(fold(text).split())


async def note(redis: aioredis.Redis, item: Unanswered) -> None:
    if not has_words(item.text):
        return
    await redis.xadd(keys.UNANSWERED, {
        "kind": item.kind, "text": item.text[:MAX_TEXT], "lang": item.lang, "ts": item.ts,
        "conv": item.conversation_id, "entry": item.entry, "best": item.best,
        "confidence": f"{item.confidence:.3f}", "suggested": " ".join(item.suggested),
    }, maxlen=MAX_KEPT, approximate=True)  # fmt: skip


async def read(redis: aioredis.Redis, days: float, limit: int = MAX_KEPT) -> list[Unanswered]:
    """The noted questions of the last `days` days, newest first."""
    since = int((time.time() - days * 86400) * 1000)
    raw = cast(list[tuple[str, dict[str, str]]],
               await redis.xrevrange(keys.UNANSWERED, min=f"{max(since, 0)}-0", count=limit))
    found = []
    for _, f in raw:
        kind = f.get("kind", "")
        if kind not in KINDS or not has_words(f.get("text", "")):  # noted before emoji were left out
            continue
        found.append(Unanswered(
            kind=cast(Kind, kind), text=f["text"], lang=f.get("lang", ""), ts=int(f.get("ts", 0) or 0),
            conversation_id=f.get("conv", ""), entry=f.get("entry", ""), best=f.get("best", ""),
            confidence=float(f.get("confidence", 0) or 0), suggested=tuple(f.get("suggested", "").split()),
        ))  # fmt: skip
    return found


def still_open(items: Iterable[Unanswered], knowledge: Knowledge) -> tuple[list[Unanswered], int]:
    """The noted questions that the knowledge base in use still does not answer, in their order, and how
    many others it answers by now (an entry written since, or a wording added to one).

    Answered by now: one of the knowledge base's own questions once normalised (as `relevo faq check`
    compares them), or a question the bot now answers outright, as `relevo faq ask` would show. Not by the
    entry whose answer a customer said did not help for those words (not_helpful): that answer, not the
    matching, is what still needs work. (`draft` leaves the knowledge base's own questions out of the file.)
    """
    known = _known_questions(knowledge.kb)
    verdicts: dict[tuple[str, str, str], bool] = {}
    kept: list[Unanswered] = []
    answered = 0
    for item in items:
        lang = item.lang or "en"
        failed = item.entry if item.kind == "not_helpful" else ""
        key = (_plain(item.text), lang, failed)
        verdict = verdicts.get(key)
        if verdict is None:
            verdict = verdicts[key] = _answered_now(item.text, lang, failed, knowledge, known)
        if verdict:
            answered += 1
        else:
            kept.append(item)
    return kept, answered


def _answered_now(text: str, lang: str, failed: str, knowledge: Knowledge, known: dict[tuple[str, str], str]) -> bool:
    owner = known.get((lang, normalize(text, lang) or text))  # no words at all: never one of its questions
    if owner is not None:
        return owner != failed
    decision = knowledge.decide(text, lang)
    return decision.action is Action.ANSWER and decision.entry is not None and decision.entry.id != failed


_known: tuple[KnowledgeBase | None, dict[tuple[str, str], str]] = (None, {})


def _known_questions(kb: KnowledgeBase) -> dict[tuple[str, str], str]:
    """(language, normalised question) -> entry, of every question of the knowledge base; kept for the last
    knowledge base asked about (it is replaced, never changed, when the files change)."""
    global _known
    cached_kb, questions = _known
    if cached_kb is not kb:
        # As `relevo faq check` compares them: a question without words is not compared (a warning there).
        questions = {(lang, norm): e.id for e in kb.entries for lang, qs in e.questions.items() for q in qs
                     if (norm := normalize(q, lang))}  # fmt: skip
        _known = (kb, questions)
    return questions


def open_groups(items: Iterable[Unanswered], knowledge: Knowledge) -> tuple[list[Group], int]:
    """`group` of the questions `still_open`, and how many the knowledge base answers by now."""
    kept, answered = still_open(items, knowledge)
    return group(kept), answered


def group(items: Sequence[Unanswered]) -> list[Group]:
    """Questions asked in about the same words together, the most asked first."""
    groups: list[Group] = []
    keys_: list[str] = []  # each group's first wording, folded
    exact: dict[str, int] = {}  # a wording seen before: its group, without comparing
    # Groups by the words of their first wording: a question is compared with the groups it shares a
    # word (other than "the", "de" ...) with, in rapidfuzz's C loop. Comparing with every group made
    # 2 000 different questions take 3.5 s and 10 000 take minutes (bench: banking77, same groups at 2 000).
    by_word: dict[str, list[int]] = {}
    for item in items:
        key = _plain(item.text)
        at = exact.get(key)
        if at is None:
            words = set(key.split())
            content = words - _STOP_WORDS
            near = sorted(set().union(*(by_word.get(w, ()) for w in content))) if content else range(len(keys_))
            found = process.extractOne(key, [keys_[i] for i in near], scorer=fuzz.token_set_ratio,
                                       score_cutoff=SAME_QUESTION)
            if found is not None:
                at = near[found[2]]
            else:
                groups.append(Group(last_ts=item.ts))
                keys_.append(key)
                at = len(groups) - 1
                for w in words:
                    by_word.setdefault(w, []).append(at)
            exact[key] = at
        g = groups[at]
        g.asked.append((item.text.strip(), item.lang or "en"))
        g.kinds.add(item.kind)
        g.entries.update(e for e in (item.entry, item.best, *item.suggested) if e)
        g.last_ts = max(g.last_ts, item.ts)
    return sorted(groups, key=lambda g: (-g.count, -g.last_ts))


def examples(g: Group) -> list[tuple[str, str]]:
    """Its distinct wordings (case, accents and punctuation aside) with their language, the most recent first."""
    seen: dict[str, tuple[str, str]] = {}
    for text, lang in g.asked:
        seen.setdefault(_plain(text), (text, lang))
    return list(seen.values())[:MAX_EXAMPLES]


def to_dict(g: Group) -> dict[str, Any]:
    """One group as JSON data (the supervisor view's GET /api/unanswered): its most recent wording, how
    often and in which languages it was asked, why it went unanswered, the entries that came closest or
    did not help, when it was last asked (ms) and its distinct wordings."""
    shown = examples(g)
    return {
        "text": shown[0][0] if shown else "", "count": g.count, "langs": sorted({lang for _, lang in g.asked}),
        "kinds": sorted(g.kinds), "entries": sorted(g.entries), "last_ts": g.last_ts,
        "examples": [{"text": text, "lang": lang} for text, lang in shown],
    }  # fmt: skip


def draft(groups: Sequence[Group], by: str = "`relevo faq unanswered --draft`", kb: KnowledgeBase | None = None) -> str:
    """A knowledge-base file to start from: the customers' wordings as questions, answers left empty.

    The empty answers are on purpose: `relevo faq check` refuses the file until someone writes them,
    so a draft copied into config/faq as it is never reaches a customer. A wording that the knowledge base
    `kb` or an earlier entry of the draft already has once normalised is left out: `relevo faq check` would
    refuse the file for it (two entries with the same question) rather than for the answers.
    """
    entries: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set(_known_questions(kb)) if kb is not None else set()
    for g in groups:
        by_lang: dict[str, list[str]] = {}
        mine: set[tuple[str, str]] = set()  # twice in one entry is only a warning: the customers' wordings stay
        for text, lang in examples(g):
            norm = (lang, normalize(text, lang) or text)
            if norm not in seen:
                mine.add(norm)
                by_lang.setdefault(lang, []).append(text)
        if not by_lang:
            continue
        seen |= mine
        entries.append({
            "id": f"new-question-{len(entries) + 1}",
            "questions": by_lang,
            "answer": {lang: "" for lang in by_lang},
        })  # fmt: skip
    header = (f"# Drafted by {by}: give each entry a real id, merge or drop\n"
              "# questions, write the answers, then `relevo faq check THIS_FILE` (checked with the knowledge\n"
              "# base it would join) before copying it into config/faq.\n")
    return header + yaml.safe_dump({"entries": entries}, allow_unicode=True, sort_keys=False, width=100)


def _plain(text: str) -> str:
    return " ".join(_WORD.findall(fold(text)))
