"""Load the knowledge-base YAML files of a folder and validate them into `file:line: message` problems."""

from __future__ import annotations

import difflib
import hashlib
import logging
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from faq.model import LANGS, Entry, HandoffRule, KnowledgeBase, Problem
from faq.normalize import normalize

logger = logging.getLogger(__name__)

FILE_KEYS = ("department", "entries")
ENTRY_KEYS = ("id", "questions", "answer", "department", "handoff")
HANDOFF_KEYS = ("department", "tier")
# Ids travel in button values and URLs: no spaces or quotes, but data-set ids like "card_payment?" pass.
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.?!:+-]{0,99}$")
LANG_RE = re.compile(r"^[a-z]{2}$")
MAX_TIER = 3
# Bounds that keep one bad file from eating the process's memory.
MAX_FILE_BYTES = 2_000_000
MAX_TEXT_CHARS = 4_000
# A file that loads to nothing is far more often a truncated save or a bad redirect than a wish to
# drop its entries, so it is refused like any broken edit; deleting the file is how entries go.
NO_ENTRIES_HINT = "to remove this file's entries, delete the file"
# What a knowledge-base admin can act on, in place of PyYAML's words for the common slips.
COLON_HINT = "a ':' inside a text: put the text in quotes"
INDENT_HINT = "the indentation does not match the lines above"
TAB_INDENT_HINT = "tabs are not allowed for indentation, use spaces"


@dataclass
class LoadResult:
    kb: KnowledgeBase | None  # None when there is any error: nothing half-loaded is ever used
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    # The bytes that were parsed, by path relative to the folder (POSIX form): what a clean load
    # keeps as the last good copy, so the copy is exactly what was validated, not a later edit.
    sources: dict[str, bytes] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.kb is not None


class _Report:
    """Collects problems for one file; each knows the YAML node's line."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []
        # (entry's line, language, question) -> the question's own line: where a clash is reported.
        self.question_lines: dict[tuple[int, str, str], int] = {}

    def error(self, node: yaml.Node | None, message: str) -> None:
        self.errors.append(Problem(self.file, _line(node), message))

    def warn(self, node: yaml.Node | None, message: str) -> None:
        self.warnings.append(Problem(self.file, _line(node), message, "warning"))


def _line(node: yaml.Node | None) -> int:
    return node.start_mark.line + 1 if node is not None else 1


def _scalar(node: yaml.Node) -> Any:
    # SafeConstructor resolves a scalar node the way yaml.safe_load would (int, bool, str, null ...).
    return yaml.SafeLoader("").construct_object(node, deep=True)


def _pairs(node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node]]:
    return list(node.value)


def _check_keys(
    rep: _Report, node: yaml.MappingNode, allowed: tuple[str, ...], what: str
) -> dict[str, yaml.Node]:
    found: dict[str, yaml.Node] = {}
    for key_node, value_node in _pairs(node):
        key = _scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
        if not isinstance(key, str) or key not in allowed:
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else f" (allowed: {', '.join(allowed)})"
            rep.error(key_node, f"unknown key '{key}' in {what}{suggestion}")
            continue
        if key in found:
            rep.error(key_node, f"key '{key}' given twice in {what}")
        found[key] = value_node
    return found


def _text(rep: _Report, node: yaml.Node, what: str) -> str | None:
    value = _scalar(node) if isinstance(node, yaml.ScalarNode) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        if isinstance(node, yaml.MappingNode) and len(node.value) == 1:
            # `- Hours: 9 to 5`, `[a, Hours: 9 to 5]`: YAML read a name and a value, not a text.
            rep.error(node, f"{what} must be text ({COLON_HINT})")
        else:
            rep.error(node, f"{what} must be text")
        return None
    value = value.strip()
    if not value:
        rep.error(node, f"{what} is empty")
        return None
    if len(value) > MAX_TEXT_CHARS:
        rep.error(node, f"{what} is longer than {MAX_TEXT_CHARS} characters")
        return None
    return value


def _lang_key(rep: _Report, key_node: yaml.Node, what: str) -> str | None:
    lang = _scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
    if not isinstance(lang, str) or not LANG_RE.match(lang):
        rep.error(key_node, f"{what}: '{lang}' is not a two-letter language code such as en or es")
        return None
    if lang not in LANGS:
        rep.warn(key_node, f"{what}: language '{lang}' is kept but the bot only matches {', '.join(LANGS)}")
    return lang


def _questions(rep: _Report, node: yaml.Node, entry_id: str, entry_line: int) -> dict[str, tuple[str, ...]]:
    if not isinstance(node, yaml.MappingNode):
        rep.error(node, f"entry '{entry_id}': questions must map a language to a list of questions")
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for key_node, value_node in _pairs(node):
        lang = _lang_key(rep, key_node, f"entry '{entry_id}' questions")
        if lang is None:
            continue
        if not isinstance(value_node, yaml.SequenceNode):
            rep.error(value_node, f"entry '{entry_id}': questions.{lang} must be a list of questions")
            continue
        texts = [_text(rep, q, f"entry '{entry_id}': a question in {lang}") for q in value_node.value]
        for text, q in zip(texts, value_node.value, strict=True):
            if text:
                rep.question_lines.setdefault((entry_line, lang, text), _line(q))
        kept = tuple(t for t in texts if t)
        if not value_node.value:
            rep.error(value_node, f"entry '{entry_id}': questions.{lang} is empty")
        if kept:
            out[lang] = kept
    return out


def _answers(rep: _Report, node: yaml.Node, entry_id: str) -> dict[str, str]:
    if not isinstance(node, yaml.MappingNode):
        rep.error(node, f"entry '{entry_id}': answer must map a language to the answer text")
        return {}
    out: dict[str, str] = {}
    for key_node, value_node in _pairs(node):
        lang = _lang_key(rep, key_node, f"entry '{entry_id}' answer")
        text = _text(rep, value_node, f"entry '{entry_id}': answer.{lang}") if lang else None
        if lang and text:
            out[lang] = text
    return out


def _handoff(
    rep: _Report, node: yaml.Node, entry_id: str, department: str | None, department_line: int
) -> HandoffRule | None:
    if not isinstance(node, yaml.MappingNode):
        rep.error(
            node, f"entry '{entry_id}': handoff must be a mapping like {{department: returns, tier: 2}}"
        )
        return None
    keys = _check_keys(rep, node, HANDOFF_KEYS, f"handoff of entry '{entry_id}'")
    dept = (
        _text(rep, keys["department"], f"entry '{entry_id}': handoff.department")
        if "department" in keys
        else department
    )
    dept_line = _line(keys["department"]) if "department" in keys else department_line
    tier: Any = 1
    if "tier" in keys:
        tier = _scalar(keys["tier"]) if isinstance(keys["tier"], yaml.ScalarNode) else None
        if not isinstance(tier, int) or isinstance(tier, bool) or not 1 <= tier <= MAX_TIER:
            rep.error(
                keys["tier"], f"entry '{entry_id}': handoff.tier must be a whole number from 1 to {MAX_TIER}"
            )
            return None
    if not dept:
        rep.error(node, f"entry '{entry_id}': handoff needs a department (here or as the file's default)")
        return None
    return HandoffRule(department=dept, tier=tier, line=dept_line)


def _entry(
    rep: _Report, node: yaml.Node, default_department: str | None, default_line: int
) -> Entry | None:
    if not isinstance(node, yaml.MappingNode):
        rep.error(node, "an entry must be a mapping with id, questions and answer")
        return None
    keys = _check_keys(rep, node, ENTRY_KEYS, "an entry")
    if "id" not in keys:
        rep.error(node, "entry without an id")
        return None
    entry_id = _text(rep, keys["id"], "id")
    if entry_id is None:
        return None
    if not ID_RE.match(entry_id):
        rep.error(
            keys["id"],
            f"id '{entry_id}' must start with a letter or digit and hold only letters, digits "
            "and - _ . ? ! : + (at most 100)",
        )
        return None
    department, department_line = default_department, default_line
    if "department" in keys:
        department = _text(rep, keys["department"], f"entry '{entry_id}': department")
        department_line = _line(keys["department"])
    questions = _questions(rep, keys["questions"], entry_id, _line(node)) if "questions" in keys else {}
    answers = _answers(rep, keys["answer"], entry_id) if "answer" in keys else {}
    if "questions" not in keys:
        rep.error(node, f"entry '{entry_id}' has no questions")
    if "answer" not in keys:
        rep.error(node, f"entry '{entry_id}' has no answer")
    for lang in questions:
        if lang not in answers and "answer" in keys:
            rep.error(
                keys["answer"], f"entry '{entry_id}' has questions in '{lang}' but no answer in '{lang}'"
            )
    handoff = (
        _handoff(rep, keys["handoff"], entry_id, department, department_line) if "handoff" in keys else None
    )
    return Entry(
        id=entry_id,
        questions=questions,
        answers=answers,
        department=department,
        handoff=handoff,
        source=rep.file,
        line=_line(node),
        department_line=department_line if department else 0,
    )


def load_file(
    path: Path, raw: bytes | None = None, question_lines: dict[tuple[str, int, str, str], int] | None = None
) -> tuple[list[Entry], list[Problem], list[Problem]]:
    """Entries of one file and its problems (errors, warnings); entries are only usable without errors.

    `question_lines` is filled with (file, entry's line, language, question) -> the question's line."""
    rep = _Report(str(path))
    if raw is None:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            rep.error(None, f"cannot read file: {exc.strerror}")
            return [], rep.errors, rep.warnings
    if len(raw) > MAX_FILE_BYTES:
        rep.error(None, f"file is larger than {MAX_FILE_BYTES} bytes")
        return [], rep.errors, rep.warnings
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        rep.errors.append(Problem(rep.file, line, "file is not UTF-8 text"))
        return [], rep.errors, rep.warnings
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line, message = yaml_problem(text, exc)
        rep.errors.append(Problem(rep.file, line, f"bad YAML: {message}"))
        return [], rep.errors, rep.warnings
    except yaml.YAMLError as exc:
        rep.error(None, f"bad YAML: {exc}")
        return [], rep.errors, rep.warnings
    try:
        loaded = _validate(rep, root)
    except yaml.MarkedYAMLError as exc:
        # A tag the safe loader does not know ("en: !Hola"): met when a value is read, not when parsed.
        line, message = yaml_problem(text, exc)
        return [], [*rep.errors, Problem(rep.file, line, f"bad YAML: {message}")], rep.warnings
    if question_lines is not None:
        question_lines.update({(rep.file, *key): line for key, line in rep.question_lines.items()})
    return loaded


def _validate(rep: _Report, root: yaml.Node | None) -> tuple[list[Entry], list[Problem], list[Problem]]:
    if root is None:
        rep.error(None, f"file is empty (nothing but blank lines or comments); {NO_ENTRIES_HINT}")
        return [], rep.errors, rep.warnings
    if not isinstance(root, yaml.MappingNode):
        rep.error(
            root, "a knowledge-base file must be a mapping with 'entries:' (and optional 'department:')"
        )
        return [], rep.errors, rep.warnings
    keys = _check_keys(rep, root, FILE_KEYS, "the file")
    department = _text(rep, keys["department"], "department") if "department" in keys else None
    department_line = _line(keys["department"]) if "department" in keys else 0
    entries_node = keys.get("entries")
    if entries_node is None or (isinstance(entries_node, yaml.ScalarNode) and _scalar(entries_node) is None):
        rep.error(entries_node or root, f"file has no entries; {NO_ENTRIES_HINT}")
        return [], rep.errors, rep.warnings
    if not isinstance(entries_node, yaml.SequenceNode):
        rep.error(entries_node, "entries must be a list")
        return [], rep.errors, rep.warnings
    if not entries_node.value:
        rep.error(entries_node, f"entries is an empty list; {NO_ENTRIES_HINT}")
        return [], rep.errors, rep.warnings
    entries = [
        e for e in (_entry(rep, n, department, department_line) for n in entries_node.value) if e is not None
    ]
    return entries, rep.errors, rep.warnings


def _cross_checks(
    entries: list[Entry],
    changed: dict[str, int] | None = None,
    question_lines: dict[tuple[str, int, str, str], int] | None = None,
) -> tuple[list[Problem], list[Problem]]:
    """Problems only visible across entries and files: duplicate ids, conflicting questions.

    `changed` (file -> modification time, ns) decides which of two clashing entries of different files
    is reported: the one of the file changed last, which is most likely the one the admin just edited,
    not the untouched file that happens to sort after it. Without it, or on a tie, the file order decides.
    A question's problem is reported at the question's own line (`question_lines`), else at its entry's.
    """
    lines = question_lines or {}

    def at(e: Entry, lang: str, q: str) -> int:
        return lines.get((e.source, e.line, lang, q), e.line)

    errors: list[Problem] = []
    warnings: list[Problem] = []
    if changed:
        rank = {source: i for i, source in enumerate(dict.fromkeys(e.source for e in entries))}
        # A stable sort: entries of one file keep their order, so a file's own duplicate is its later line.
        entries = sorted(entries, key=lambda e: (changed.get(e.source, 0), rank[e.source]))
    first: dict[str, Entry] = {}
    for e in entries:
        if e.id in first:
            prev = first[e.id]
            errors.append(Problem(e.source, e.line, f"duplicate id '{e.id}' ({_also_at(prev, e, changed)})"))
        else:
            first[e.id] = e
    owner: dict[tuple[str, str], tuple[Entry, str]] = {}
    for e in entries:
        for lang, questions in e.questions.items():
            for q in questions:
                norm = normalize(q, lang)
                if not norm:
                    warnings.append(
                        Problem(
                            e.source,
                            at(e, lang, q),
                            f"entry '{e.id}': question '{q}' has no words to match on",
                            "warning",
                        )
                    )
                    continue
                seen = owner.get((lang, norm))
                if seen is None:
                    owner[(lang, norm)] = (e, q)
                elif seen[0].id != e.id:
                    seen_line = at(seen[0], lang, seen[1])
                    errors.append(
                        Problem(
                            e.source,
                            at(e, lang, q),
                            f"entry '{e.id}': question '{q}' is the same as '{seen[1]}' of entry '{seen[0].id}' "
                            f"({seen[0].source}:{seen_line}) once normalised; the bot cannot tell them apart",
                        )
                    )
                elif seen[1] != q:
                    warnings.append(
                        Problem(
                            e.source,
                            at(e, lang, q),
                            f"entry '{e.id}': questions '{seen[1]}' and '{q}' are the same once normalised",
                            "warning",
                        )
                    )
    return errors, warnings


def _also_at(prev: Entry, entry: Entry, changed: dict[str, int] | None) -> str:
    """Where the id was used before; another file changed earlier is said to be one (the admin did not
    just touch it: this file is the one to fix, or the entry was meant to move)."""
    if prev.source != entry.source and changed and changed.get(prev.source, 0) < changed.get(entry.source, 0):
        return f"already used at {prev.source}:{prev.line}, a file changed before this one"
    return f"first at {prev.source}:{prev.line}"


def department_problems(entries: Iterable[Entry], departments: Collection[str]) -> list[Problem]:
    """Department names (a file's or an entry's `department`, a handoff's target) that the handoff
    rules do not define: a handoff there would land in a queue nobody works. One problem per place."""
    known = sorted(departments)
    # (file, line, name) -> ids of the entries using it, and whether every use is a handoff's own key
    uses: dict[tuple[str, int, str], tuple[list[str], bool]] = {}

    def use(entry: Entry, line: int, name: str, handoff_key: bool) -> None:
        if name in departments:
            return
        ids, only_handoff = uses.setdefault((entry.source, line, name), ([], True))
        if entry.id not in ids:
            ids.append(entry.id)
        uses[(entry.source, line, name)] = (ids, only_handoff and handoff_key)

    for e in entries:
        if e.handoff is not None:
            # A handoff without its own department shares the entry's (or file's) line and name.
            own = (e.handoff.line, e.handoff.department) != (e.department_line, e.department)
            use(e, e.handoff.line, e.handoff.department, own)
        if e.department is not None:
            use(e, e.department_line, e.department, False)
    problems = []
    for (file, line, name), (ids, only_handoff) in uses.items():
        hint = difflib.get_close_matches(name, known, n=1)
        mean = f" (did you mean '{hint[0]}'?)" if hint else ""
        shown = ", ".join(f"'{i}'" for i in ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
        whose = f"entr{'y' if len(ids) == 1 else 'ies'} {shown}"
        what = "handoff department" if only_handoff else "department"
        problems.append(
            Problem(file, line, f"unknown {what} '{name}'{mean} for {whose}; known departments: {', '.join(known)}")
        )
    return sorted(problems, key=lambda p: (p.file, p.line))


def load_dir(folder: Path, departments: Collection[str] | None = None, extra: Sequence[Path] = ()) -> LoadResult:
    """Load every *.yaml / *.yml file under `folder` (sorted, recursive) into one knowledge base.

    With `departments` (those of the handoff rules), a department name outside them is an error too.
    `extra`: files from elsewhere loaded with them (a draft checked against the knowledge base it would
    join: a duplicate id or question across the two is found).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return LoadResult(None, [Problem(str(folder), 0, "knowledge-base folder not found")])
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix in (".yaml", ".yml")
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    inside = {p.resolve() for p in files}
    files += [Path(p) for p in extra if Path(p).resolve() not in inside]
    result = LoadResult(None, files=files)
    if not files:
        result.errors.append(Problem(str(folder), 0, "no knowledge-base files (*.yaml) in this folder"))
        return result
    entries: list[Entry] = []
    changed: dict[str, int] = {}
    question_lines: dict[tuple[str, int, str, str], int] = {}
    digest = hashlib.sha256()
    for path in files:
        try:
            changed[str(path)] = path.stat().st_mtime_ns
            raw = path.read_bytes()
        except OSError as exc:
            # A file removed or unreadable mid-reload: report it, keep the last good knowledge base.
            result.errors.append(Problem(str(path), 0, f"cannot read file: {exc.strerror}"))
            continue
        # The version hashes the very bytes that were parsed, so a reload never skips a change.
        name = path.relative_to(folder).as_posix() if path.is_relative_to(folder) else str(path)
        digest.update(name.encode() + b"\0" + raw + b"\0")
        result.sources[name] = raw
        got, errors, warnings = load_file(path, raw, question_lines)
        entries += got
        result.errors += errors
        result.warnings += warnings
    errors, warnings = _cross_checks(entries, changed, question_lines)
    result.errors += errors
    result.warnings += warnings
    if departments is not None:
        result.errors += department_problems(entries, departments)
    if not entries and not result.errors:
        result.errors.append(Problem(str(folder), 0, "the knowledge base has no entries"))
    if not result.errors:
        result.kb = KnowledgeBase(entries=tuple(entries), version=digest.hexdigest()[:16])
    return result


# -- YAML mistakes in words an admin can act on ------------------------------------------------------

_LEAD_RE = re.compile(r"^[ ]*(?:-[ ]+)*")  # a line's indentation, a list item's dash included
_KEY_RE = re.compile(r"^[\w.-]+$")
_NO_SPACE_RE = re.compile(r"^[ ]*(?:-[ ]+)*[\w.-]+:[^\s]")  # `en:"text"`
NO_SPACE_HINT = "put a space after the ':' that ends a name"
# Lines a quote left open swallows: a list item or a `name: value` line.
_STRUCTURE_RE = re.compile(r"\n[ \t]*(?:- |[\w.-]+:(?:\s|$))")


def yaml_problem(text: str, exc: yaml.MarkedYAMLError) -> tuple[int, str]:
    """(line, message) for a file PyYAML refuses: the line where the mistake most likely is, and
    what to do about it in plain words for the common slips; PyYAML's own words for the rest."""
    lines = text.splitlines()
    problem, context = exc.problem or "", exc.context or ""
    pm, cm = exc.problem_mark, exc.context_mark
    mark = pm or cm
    if mark is None:
        return 1, problem or context or str(exc)

    def line_of(m: yaml.Mark) -> str:
        return lines[m.line] if 0 <= m.line < len(lines) else ""

    if pm is not None and not problem.startswith("found unexpected end of stream"):
        opened = _open_quote(text, pm)
        if opened is not None:
            return opened.line + 1, _quote_hint(text[opened.index])
    if ("'\\t'" in problem or " tab " in problem) and pm is not None:
        before = line_of(pm)[: pm.column]
        return pm.line + 1, TAB_INDENT_HINT if not before.strip() else "a tab here: use spaces instead"
    if context.startswith("while scanning a quoted scalar") and cm is not None:
        return cm.line + 1, _quote_hint(text[cm.index])
    if problem.startswith("found unknown escape character") and pm is not None:
        return pm.line + 1, "a '\\' inside a text in double quotes: write it as '\\\\', or quote the text with ' '"
    if pm is not None and (
        "cannot start any token" in problem
        or problem.startswith("found undefined alias")
        or problem.startswith("could not determine a constructor for the tag")
    ):
        return pm.line + 1, f"a text cannot start with '{text[pm.index]}': put the text in quotes"
    if context.startswith(("while scanning an alias", "while scanning an anchor", "while parsing a tag")) and cm:
        return cm.line + 1, f"a text cannot start with '{text[cm.index]}': put the text in quotes"
    if problem == "mapping values are not allowed here" and pm is not None:
        before = _LEAD_RE.sub("", line_of(pm)[: pm.column]).strip()
        if not _KEY_RE.match(before):
            return pm.line + 1, COLON_HINT
        # A name read as more of the text above: that text's `en:"..."` lacks its space, or this
        # line is deeper than its neighbours (`en: text` / ` es: ...`).
        above = next((n for n in range(pm.line - 1, -1, -1) if lines[n].strip()), None)
        if above is not None and _NO_SPACE_RE.match(lines[above]):
            return above + 1, NO_SPACE_HINT
        return pm.line + 1, INDENT_HINT
    if context.startswith("while scanning a simple key") and cm is not None:
        if _NO_SPACE_RE.match(line_of(cm)):
            return cm.line + 1, NO_SPACE_HINT
        return cm.line + 1, (
            "this line is not 'name: value' nor a list item: if it goes on from the text above, "
            "indent it further or put that whole text in quotes"
        )
    if context.startswith(("while parsing a flow sequence", "while parsing a flow mapping")) and pm and cm:
        if cm.line != pm.line:
            return cm.line + 1, f"a '{text[cm.index]}' that opens here is not closed"
        if problem.endswith("but got '?'"):
            return pm.line + 1, COLON_HINT
        return pm.line + 1, "a ',' is missing between two items, or a quote inside a text ends it early"
    if problem.startswith("expected <block end>") and pm is not None:
        found = problem.rsplit("found ", 1)[-1]
        here = line_of(pm)
        if found == "'<scalar>'":
            return pm.line + 1, (
                "text after the closing quote: put the whole text in quotes, "
                "and write a quote inside it as \\\" (or quote the text with ' ')"
            )
        if found == "'?'" and re.match(r"^[ ]*-[^\s-]", here):
            return pm.line + 1, "a '-' that starts a list item needs a space after it"
        return _indent_line(lines, pm, cm) + 1, INDENT_HINT
    return mark.line + 1, problem or context


def _quote_hint(quote: str) -> str:
    quote = quote if quote in "\"'" else '"'
    return f"a quote ({quote}) that opens here is not closed"


def _open_quote(text: str, problem: yaml.Mark) -> yaml.Mark | None:
    """Where a quote left open begins, when that is why PyYAML stumbles at `problem`: the last quoted
    text before it runs over several lines, swallowing lines that look like YAML of their own."""
    quoted: yaml.ScalarToken | None = None
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if token.start_mark.index >= problem.index:
                break
            if isinstance(token, yaml.ScalarToken) and token.style in ('"', "'"):
                quoted = token
    except yaml.YAMLError:
        pass
    if quoted is None or quoted.start_mark.line == quoted.end_mark.line:
        return None
    if quoted.end_mark.line != problem.line:
        return None
    swallowed = text[quoted.start_mark.index : quoted.end_mark.index]
    return quoted.start_mark if _STRUCTURE_RE.search(swallowed) else None


def _indent_line(lines: list[str], problem: yaml.Mark, context: yaml.Mark | None) -> int:
    """Of the line PyYAML stopped at and the first line of the block it was reading, the one whose
    indentation the file uses least: the odd one out is the one that was mistyped. In
    `answer:` / ` en: ...` (5 spaces) / `  es: ...` (6), PyYAML stops at `es`, but `en` is off."""
    if context is None or context.line == problem.line or not 0 <= context.line < len(lines):
        return problem.line

    def depth(line: str) -> int:
        return len(_LEAD_RE.match(line).group(0))  # type: ignore[union-attr]

    used: dict[int, int] = {}
    for line in lines:
        if line.strip() and not line.lstrip().startswith("#"):
            used[depth(line)] = used.get(depth(line), 0) + 1
    here, there = depth(lines[problem.line]) if problem.line < len(lines) else 0, depth(lines[context.line])
    return context.line if used.get(there, 0) < used.get(here, 0) else problem.line
