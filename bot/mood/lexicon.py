"""Mood lexicons: load config/mood/*.yaml with line numbers and compile them for fast matching."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot.mood.text import fold, term_tokens

logger = logging.getLogger(__name__)

SIGNALS_FILE = "signals.yaml"
# Term groups of a language file and how the agent sees a hit ('insult: "inútil"').
GROUP_LABELS = {
    "negative": "negative",
    "insult": "insult",
    "profanity": "profanity",
    "threat_leave": "threat to leave",
    "threat_complain": "threat to complain",
    "dissatisfaction": "dissatisfaction",
    "positive": "negated",  # a positive word only counts when negated: "no funciona", "not helpful"
    "calm": "calm",  # praise and laughter lower the score instead: "fucking amazing", "jajaja"
    # Praise that, next to a complaint, is sarcasm ("great service as always", "enhorabuena"); alone
    # it counts for nothing.
    "irony": "sarcasm",
}
# Groups whose single words a masked word ("f*ck", "sh!t", "idi*ta") may stand for.
_MASKABLE = frozenset({"negative", "insult", "profanity"})
# What each masking character stands for; a run of '*' stands for as many letters (or about as many).
_MASK_CHARS = {"$": "s", "@": "a", "!": "[il]", "1": "[il]", "0": "o", "3": "e", "4": "a"}
# Endings tried on a 'stem*' term when unmasking: "idi*tas" can be "idiotas" (idiot*).
_TAILS = ("", "s", "es", "ed", "ing", "er", "ers", "y", "ic", "a", "as", "o", "os")
WORD_LISTS = (
    "negators", "negator_suffixes", "not_negating", "markers", "targets", "asking", "conditional", "reporters",
)
FACTOR_MAPS = ("intensifiers",)
SIGNAL_DEFAULTS: dict[str, float] = {
    "shouting_weight": 0.3,
    "shouting_min_words": 2,
    "shouting_min_ratio": 0.6,
    "exclamation_weight": 0.15,
    "exclamation_long_weight": 0.25,
    "question_run_weight": 0.1,
    "elongation_weight": 0.1,
    "repeated_question_weight": 0.45,
    "repeated_question_similarity": 0.8,
    "dissatisfaction_without_answer": 0.5,
    "negation_window": 3,
    "intensifier_window": 2,
    "target_factor": 1.0,
    "reported_factor": 1.0,
    "count_again_weight": 0.0,
    "conversation_decay": 0.5,
    "conversation_messages": 8,
    "emoji_repeats": 3,
    "irony_needs": 0.3,
}


class MoodConfigError(ValueError):
    """A mood config file is wrong; the message starts with 'file:line:'."""


@dataclass(frozen=True)
class Term:
    pattern: tuple[str, ...]  # folded tokens; 'x*' = any word starting with x; '...' = up to 3 words
    group: str
    weight: float
    text: str  # as the admin wrote it
    line: int


# Terms a word may start: those to try whatever follows, and the others by their second word.
Candidates = tuple[tuple[Term, ...], dict[str, tuple[Term, ...]]]


@dataclass
class Language:
    code: str
    negators: frozenset[str] = frozenset()
    negator_suffixes: tuple[str, ...] = ()
    not_negating: frozenset[str] = frozenset()  # after a negator, these undo it: "not only", "no solo"
    markers: frozenset[str] = frozenset()
    targets: frozenset[str] = frozenset()  # "you", "eres": anger aimed at someone
    asking: frozenset[str] = frozenset()  # "how", "cómo": a clause they open asks, it does not threaten
    # "if", "si": a clause they open asks when the message is a question ("if I cancel, do I lose my
    # points?"); otherwise it is the usual form of a threat ("if you don't fix it I'm leaving")
    conditional: frozenset[str] = frozenset()
    # "my dad", "mi jefe": before a term in its clause, the feeling is someone else's
    reporters: frozenset[str] = frozenset()
    reporter_starts: frozenset[str] = frozenset()  # first words of the two-word reporters: "my", "mi"
    # "nueve": 9, "four": 4: a count written out again on its own ("hace 9 días. Nueve.") insists on it
    numbers: dict[str, int] = field(default_factory=dict)
    intensifiers: dict[str, float] = field(default_factory=dict)
    spellings: dict[str, str] = field(default_factory=dict)
    exact: dict[str, list[Term]] = field(default_factory=dict)
    prefix: dict[str, list[Term]] = field(default_factory=dict)
    prefix_lengths: tuple[int, ...] = ()
    candidates: dict[str, Candidates] = field(default_factory=dict)  # word -> terms it may start
    maskable: dict[str, float] = field(default_factory=dict)  # swearwords and insults: word -> weight
    unmasked: dict[str, str] = field(default_factory=dict)  # masked word -> the word it hides

    def add(self, term: Term) -> None:
        first = term.pattern[0]
        if first.endswith("*"):
            self.prefix.setdefault(first[:-1], []).append(term)
        else:
            self.exact.setdefault(first, []).append(term)

    def finish(self) -> None:
        self.prefix_lengths = tuple(sorted({len(p) for p in self.prefix}))
        self.reporter_starts = frozenset(r.split(" ", 1)[0] for r in self.reporters if " " in r)
        for terms in (*self.exact.values(), *self.prefix.values()):
            for t in terms:
                if len(t.pattern) == 1 and t.group in _MASKABLE and t.weight > 0:
                    stem = t.pattern[0]
                    forms = [stem[:-1] + tail for tail in _TAILS] if stem.endswith("*") else [stem]
                    for form in forms:
                        self.maskable[form] = max(t.weight, self.maskable.get(form, 0.0))
        for word in self.intensifiers:
            self.maskable.setdefault(word, 0.3)
        for terms in (*self.exact.values(), *self.prefix.values()):
            # Longest phrase first; of two as long, the one without a '...' gap (the more precise one).
            terms.sort(key=lambda t: (-len(t.pattern), t.pattern.count("...")))

    def unmask(self, word: str) -> str:
        """The swearword or insult a masked word stands for ("f*ck" -> "fuck"), else the word itself."""
        found = self.unmasked.get(word)
        if found is None:
            found = word
            for loose in (False, True):
                rx = re.compile(_mask_pattern(word, loose))
                matches = [w for w in self.maskable if rx.fullmatch(w)]
                if matches:
                    found = max(matches, key=lambda w: (self.maskable[w], -len(w)))
                    break
            if len(self.unmasked) >= 10_000:
                self.unmasked.clear()
            self.unmasked[word] = found
        return found

    def is_negator(self, word: str) -> bool:
        return word in self.negators or word.endswith(self.negator_suffixes)


def _mask_pattern(word: str, loose: bool) -> str:
    """A regex for the words a masked word may hide: each '*' one letter (loose: or one more)."""
    out = []
    for run in re.finditer(r"\*+|.", word):
        piece = run.group()
        if piece.startswith("*"):
            n = len(piece)
            out.append(f"[^\\W\\d_]{{{n},{n + 1}}}" if loose else f"[^\\W\\d_]{{{n}}}")
        else:
            out.append(_MASK_CHARS.get(piece, re.escape(piece)))
    return "".join(out)


@dataclass
class Signals:
    values: dict[str, float]
    emoji: dict[str, tuple[float, str]]  # character -> (weight, as written)
    # Praise and laughter emoji: like the language's calm terms, each multiplies the message's signals by
    # (1 - weight), so "fucking champions 😍🏆" is not read as anger.
    calm_emoji: dict[str, tuple[float, str]] = field(default_factory=dict)
    # Applause and the like: sarcasm next to a complaint, nothing alone (as the languages' irony terms).
    irony_emoji: dict[str, tuple[float, str]] = field(default_factory=dict)

    def __getitem__(self, key: str) -> float:
        return self.values[key]


def _where(path: Path, node: yaml.Node) -> str:
    return f"{path}:{node.start_mark.line + 1}"


def _fail(path: Path, node: yaml.Node, message: str) -> MoodConfigError:
    return MoodConfigError(f"{_where(path, node)}: {message}")


def _compose(path: Path) -> yaml.MappingNode | None:
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise MoodConfigError(f"{path}:{line}: not valid YAML: {exc.problem or exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MoodConfigError(f"{path}:1: cannot read: {exc}") from None
    if root is None:
        return None
    if not isinstance(root, yaml.MappingNode):
        raise _fail(path, root, "expected a mapping of sections at the top")
    return root


def _items(path: Path, node: yaml.Node, what: str) -> Iterator[tuple[yaml.ScalarNode, yaml.Node]]:
    if isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null"):
        return
    if not isinstance(node, yaml.MappingNode):
        raise _fail(path, node, f"{what} must be a mapping of 'term: number'")
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode) or not key.value.strip():
            raise _fail(path, key, f"{what}: each key must be a non-empty word or phrase")
        yield key, value


def _number(path: Path, node: yaml.Node, what: str, low: float, high: float) -> float:
    try:
        if not isinstance(node, yaml.ScalarNode):
            raise ValueError
        value = float(node.value)
    except ValueError:
        raise _fail(path, node, f"{what}: expected a number, got {_show(node)}") from None
    if not low <= value <= high:
        raise _fail(path, node, f"{what}: expected a number from {low:g} to {high:g}, got {node.value}")
    return value


def _show(node: yaml.Node) -> str:
    return repr(node.value) if isinstance(node, yaml.ScalarNode) else f"a {type(node).__name__}"


def _words(path: Path, node: yaml.Node, what: str) -> list[str]:
    if not isinstance(node, yaml.SequenceNode):
        raise _fail(path, node, f"{what} must be a list of words")
    out = []
    for item in node.value:
        if not isinstance(item, yaml.ScalarNode) or not item.value.strip():
            raise _fail(path, item, f"{what}: each item must be a non-empty word")
        out.append(fold(item.value.strip()))
    return out


def load_language(path: Path) -> Language:
    """One language file (its name is the language code), e.g. config/mood/es.yaml."""
    lang = Language(code=path.stem)
    root = _compose(path)
    seen: dict[tuple[str, ...], int] = {}
    for key, value in root.value if root else ():
        section = key.value
        if section in GROUP_LABELS:
            for term_node, weight_node in _items(path, value, section):
                _add_term(lang, path, section, term_node, weight_node, seen)
        elif section in WORD_LISTS:
            words = _words(path, value, section)
            if section == "negators":
                lang.negators = frozenset(words)
            elif section == "markers":
                lang.markers = frozenset(words)
            elif section == "targets":
                lang.targets = frozenset(words)
            elif section == "not_negating":
                lang.not_negating = frozenset(words)
            elif section == "asking":
                lang.asking = frozenset(words)
            elif section == "conditional":
                lang.conditional = frozenset(words)
            elif section == "reporters":
                lang.reporters = frozenset(words)
            else:
                lang.negator_suffixes = tuple(words)
        elif section == "intensifiers":
            for word, factor in _items(path, value, section):
                lang.intensifiers[fold(word.value.strip())] = _number(path, factor, section, 0.0, 5.0)
        elif section == "numbers":
            for word, number in _items(path, value, section):
                lang.numbers[fold(word.value.strip())] = int(_number(path, number, section, 0.0, 1000.0))
        elif section == "spellings":
            for word, target in _items(path, value, section):
                if not isinstance(target, yaml.ScalarNode) or not target.value.strip():
                    raise _fail(path, target, f"spellings: {word.value!r} must map to a word")
                lang.spellings[fold(word.value.strip())] = fold(target.value.strip())
        else:
            known = ", ".join([*GROUP_LABELS, *WORD_LISTS, *FACTOR_MAPS, "numbers", "spellings"])
            raise _fail(path, key, f"unknown section {section!r} (known: {known})")
    lang.finish()
    return lang


def _add_term(
    lang: Language,
    path: Path,
    group: str,
    term_node: yaml.ScalarNode,
    weight_node: yaml.Node,
    seen: dict[tuple[str, ...], int],
) -> None:
    text = term_node.value.strip()
    pattern = tuple(term_tokens(text))
    if not pattern or pattern[0] == "..." or pattern[-1] == "...":
        raise _fail(
            path, term_node, f"{group}: {text!r} has no word to match (a '...' gap goes between words)"
        )
    if any(p.endswith("*") and len(p) < 4 for p in pattern):
        raise _fail(path, term_node, f"{group}: {text!r}: a prefix before '*' needs at least 3 letters")
    weight = _number(path, weight_node, f"{group}: {text!r}", 0.0, 1.0)
    if pattern in seen:
        raise _fail(path, term_node, f"{group}: {text!r} is already listed at line {seen[pattern]}")
    seen[pattern] = term_node.start_mark.line + 1
    lang.add(Term(pattern, group, weight, text, term_node.start_mark.line + 1))


def load_signals(path: Path) -> Signals:
    """The language-free signals and emoji (config/mood/signals.yaml); missing keys keep defaults."""
    values = dict(SIGNAL_DEFAULTS)
    maps: dict[str, dict[str, tuple[float, str]]] = {"emoji": {}, "calm_emoji": {}, "irony_emoji": {}}
    root = _compose(path) if path.exists() else None
    for key, value in root.value if root else ():
        name = key.value
        if name in maps:
            for char, weight in _items(path, value, name):
                base = char.value.strip().replace("\ufe0f", "")
                for other_name, other in maps.items():
                    if other_name != name and base[0] in other:
                        raise _fail(path, char, f"{name}: {char.value!r} is also listed under {other_name}")
                maps[name][base[0]] = (_number(path, weight, f"{name} {char.value}", 0.0, 1.0), char.value.strip())
        elif name in SIGNAL_DEFAULTS:
            high = 1.0 if name.endswith(("_weight", "_ratio", "_similarity", "_decay", "_answer", "_needs")) else 50.0
            high = 5.0 if name.endswith("_factor") else high
            values[name] = _number(path, value, name, 0.0, high)
        else:
            known = ", ".join([*maps, *SIGNAL_DEFAULTS])
            raise _fail(path, key, f"unknown setting {name!r} (known: {known})")
    return Signals(values, maps["emoji"], maps["calm_emoji"], maps["irony_emoji"])


def load_folder(folder: Path) -> tuple[dict[str, Language], Signals]:
    """Every <lang>.yaml in folder plus signals.yaml; raises MoodConfigError naming file and line."""
    if not folder.is_dir():
        raise MoodConfigError(f"{folder}:0: mood folder not found")
    languages = {}
    for path in sorted(folder.glob("*.yaml")):
        if path.name != SIGNALS_FILE:
            languages[path.stem] = load_language(path)
    if not languages:
        raise MoodConfigError(f"{folder}:0: no language files (e.g. en.yaml, es.yaml)")
    signals = load_signals(folder / SIGNALS_FILE)
    logger.debug("mood lexicons loaded from %s: %s", folder, ", ".join(languages))
    return languages, signals
