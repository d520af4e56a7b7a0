"""The knowledge base as the rest of Relevo sees it: entries, matches and decisions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property

LANGS = ("en", "es")


@dataclass(frozen=True)
class HandoffRule:
    """Where a person should take over after the entry's answer."""

    department: str
    tier: int = 1
    # Where the department was named (the handoff's own key, or the file's default): what a
    # department check points the admin at. Not part of the rule's identity.
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Entry:
    id: str
    questions: Mapping[str, tuple[str, ...]]  # lang -> example questions
    answers: Mapping[str, str]  # lang -> answer
    department: str | None = None
    handoff: HandoffRule | None = None
    source: str = ""  # file the entry came from
    line: int = 0  # line of the entry in that file
    department_line: int = field(default=0, compare=False)  # where `department` was set

    def answer_in(self, lang: str) -> tuple[str, str]:
        """(answer, language it is in): the asked language, else any other the entry has."""
        if lang in self.answers:
            return self.answers[lang], lang
        for other in (*LANGS, *sorted(self.answers)):
            if other in self.answers:
                return self.answers[other], other
        raise LookupError(f"entry {self.id} has no answer")

    def title(self, lang: str) -> str:
        """A short label for suggestions: the entry's first example question in that language."""
        qs = self.questions.get(lang) or next((q for q in self.questions.values() if q), ())
        return qs[0] if qs else self.id


@dataclass(frozen=True)
class KnowledgeBase:
    entries: tuple[Entry, ...] = ()
    version: str = ""  # content hash: tells a reload from a no-op

    @cached_property
    def by_id(self) -> Mapping[str, Entry]:
        return {e.id: e for e in self.entries}

    def __len__(self) -> int:
        return len(self.entries)


@dataclass(frozen=True)
class Problem:
    """A validation finding an admin can act on: `file:line: message`."""

    file: str
    line: int
    message: str
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(frozen=True)
class Candidate:
    entry_id: str
    score: float  # in [0, 1]
    question: str = ""  # the example question that matched best


@dataclass(frozen=True)
class Match:
    """What the matcher thinks of one question; candidates are best first."""

    text: str
    lang: str
    confidence: float  # in [0, 1]; the policy compares it with the thresholds
    candidates: tuple[Candidate, ...] = ()
    # False when the question shares next to nothing with the knowledge base ("tell me a joke", "what's
    # the weather in Madrid?"): its candidates are noise, not suggestions.
    related: bool = True

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None


class Action(StrEnum):
    ANSWER = "answer"
    CLARIFY = "clarify"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Decision:
    action: Action
    match: Match
    entry: Entry | None = None  # for ANSWER
    suggestions: tuple[Entry, ...] = field(default=())  # for CLARIFY, best first
