"""The live knowledge base of a running Relevo: the last good load, swapped whole on reload."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

import watchfiles

from faq import last_good
from faq.loader import LoadResult, department_problems, load_dir
from faq.matcher import Matcher
from faq.model import Action, Decision, KnowledgeBase, Match, Problem
from faq.policy import Thresholds, decide

logger = logging.getLogger(__name__)

KB_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class _Loaded:
    kb: KnowledgeBase
    matcher: Matcher | None  # None for the empty knowledge base before the first good load


@dataclass
class ReloadStatus:
    """What the last load attempt found, for the admin page and `relevo faq check`."""

    ok: bool = False
    version: str = ""
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


class KnowledgeBaseError(ValueError):
    """No knowledge base to serve: the folder does not load and no last good copy does either."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class Library:
    """Holds the knowledge base in use. Readers take one snapshot, so a reload never shows them half a KB."""

    def __init__(
        self,
        folder: Path,
        thresholds: Thresholds,
        departments: Collection[str] | None = None,
        default_department: str | None = None,
        last_good: Path | None = None,
        rules_note: Callable[[], str] | None = None,
    ) -> None:
        """`departments` (the handoff rules' names) and `default_department` (settings
        handoff.default_department) turn on the department check; without them names are not checked.

        With `last_good` (a folder of the data folder), every clean load is kept there, and a start
        whose folder does not load serves the newest copy instead of nothing.

        `rules_note` says, when the departments are out of date (their file changed since start), that a
        restart is needed: what an unknown department's message adds, "" otherwise."""
        self.folder = Path(folder)
        self.thresholds = thresholds
        self.departments = frozenset(departments) if departments is not None else None
        self.default_department = default_department
        self.last_good = Path(last_good) if last_good is not None else None
        self._rules_note = rules_note or (lambda: "")
        self._loaded = _Loaded(KnowledgeBase(), None)
        self.status = ReloadStatus()
        self._failed_files: set[str] = set()  # files named by the errors of the last failed load
        self._routing_logged: list[str] = []
        self.reload()

    @property
    def kb(self) -> KnowledgeBase:
        return self._loaded.kb

    @property
    def matcher(self) -> Matcher | None:
        return self._loaded.matcher

    @property
    def problems(self) -> list[Problem]:
        return [*self.status.errors, *self.status.warnings]

    def health(self) -> dict[str, object]:
        """For GET /healthz: `faq` is `ok` (the files in use are the files on disk), `misrouted` (they
        load, but an entry's handoff names an unknown department; `faq_error` says which), `stale` (they
        do not load, an older version answers; `faq_error` says why) or `empty` (nothing loaded)."""
        status = self.status
        body: dict[str, object] = {"faq_version": self._loaded.kb.version or None}
        if status.ok and status.errors:
            # Loaded, but an entry names a department the handoff rules lack: its handoffs go elsewhere
            # (`relevo faq check` refuses the file; monitoring must not read "ok").
            more = f" (and {len(status.errors) - 1} more)" if len(status.errors) > 1 else ""
            note = self._rules_note()
            restart = f"; {note}" if note else ""
            return {"faq": "misrouted", **body, "faq_error": f"{status.errors[0]}{more}{restart}"}
        if status.ok:
            return {"faq": "ok", **body}
        errors = [str(e) for e in status.errors] or ["the knowledge base did not load"]
        more = f" (and {len(errors) - 1} more error(s))" if len(errors) > 1 else ""
        state = "stale" if self._loaded.matcher is not None else "empty"
        return {"faq": state, **body, "faq_error": errors[0] + more}

    def match(self, text: str, lang: str | None = None, limit: int = 5) -> Match:
        loaded = self._loaded
        if loaded.matcher is None:
            return Match(text=text, lang=lang or "en", confidence=0.0)
        return loaded.matcher.match(text, lang, limit)

    def decide(self, text: str, lang: str | None = None) -> Decision:
        loaded = self._loaded
        if loaded.matcher is None:
            return Decision(Action.UNKNOWN, Match(text=text, lang=lang or "en", confidence=0.0))
        return decide(loaded.matcher.match(text, lang), loaded.kb, self.thresholds)

    def reload(self) -> bool:
        """Load the folder again; True when a new, valid knowledge base is now in use.

        A broken edit is logged and recorded in `status`; the previous knowledge base keeps serving.
        """
        result = load_dir(self.folder)
        for w in result.warnings:
            logger.warning("knowledge base: %s", w)
        if result.kb is None:
            for e in result.errors:
                logger.error("knowledge base: %s", e)
            # Nothing served yet (a start): the last good copy beats answering nobody.
            copy = self._serve_last_good() if self._loaded.matcher is None else None
            loaded = self._loaded
            serving = "nothing to serve" if loaded.matcher is None else f"still serving version {loaded.kb.version}"
            logger.error(
                "knowledge base in %s has %d error(s); %s%s",
                self.folder,
                len(result.errors),
                serving,
                self._fallback_note(copy),
            )
            self.status = ReloadStatus(False, self._loaded.kb.version, result.errors, result.warnings)
            self._failed_files = {e.file for e in result.errors}
            return False
        self._keep(result)
        kb, routing = self._routable(result.kb)
        swapped = kb.version != self._loaded.kb.version
        if swapped:
            # Index fully before the swap: one attribute assignment is what readers see change.
            self._loaded = _Loaded(kb, Matcher(kb))
            logger.info("knowledge base %s loaded: %d entries from %s", kb.version, len(kb), self.folder)
        # Only once the new version answers: /healthz must not say `ok` while the stale one still does.
        self.status = ReloadStatus(True, kb.version, routing, result.warnings)
        self._log_recovery(kb)
        return swapped

    def _keep(self, result: LoadResult) -> None:
        """Save a clean load as the last good copy. A data folder that cannot be written costs only
        the fallback for a later start, so it is logged, and the knowledge base is served anyway."""
        if self.last_good is None or result.kb is None:
            return
        try:
            saved = last_good.save(self.last_good, result.kb.version, result.sources)
        except OSError as exc:
            logger.error("knowledge base: cannot keep a last good copy in %s: %s", self.last_good, exc)
            return
        if saved is not None:
            logger.info("knowledge base %s kept as the last good copy in %s", saved.version, saved.path)

    def _serve_last_good(self) -> last_good.Copy | None:
        """Load the newest last good copy that loads cleanly and serve it; the copy used, or None."""
        if self.last_good is None:
            return None
        found = last_good.newest_that_loads(self.last_good)
        if found is None:
            return None
        copy, good = found
        # Entries name the admin's files, not the copy: errors, recovery lines and the console
        # point at what the admin edits (the relative paths are the same, so is the version).
        entries = tuple(
            dataclasses.replace(e, source=str(self.folder / Path(e.source).relative_to(copy.path)))
            for e in good.entries
        )
        kb, _ = self._routable(KnowledgeBase(entries=entries, version=good.version))
        self._loaded = _Loaded(kb, Matcher(kb))
        return copy

    def _fallback_note(self, copy: last_good.Copy | None) -> str:
        if copy is not None:
            return f" (the last good copy, saved {copy.saved} in {copy.path})"
        if self._loaded.matcher is None and self.last_good is not None:
            return f": no last good copy in {self.last_good} loads either"
        return ""

    def require(self) -> None:
        """Raise KnowledgeBaseError when nothing is served: a server that answers every customer
        "not understood" is worse than one that does not start and names the file to fix."""
        if self._loaded.matcher is None:
            raise KnowledgeBaseError(self.status.errors or [Problem(str(self.folder), 0, "no knowledge base")])

    def _routable(self, kb: KnowledgeBase) -> tuple[KnowledgeBase, list[Problem]]:
        """The knowledge base with every handoff pointing at a department the rules define, and the
        problems found. A misspelt department should not cost customers a correct answer, so the
        entry stays; its handoff goes to the entry's own department if that one exists, else to
        the default one, and the log says which (`relevo faq check` refuses the same files)."""
        if self.departments is None:
            return kb, []
        problems = department_problems(kb.entries, self.departments)
        if not problems:
            self._routing_logged = []
            return kb, []
        default = self.default_department
        used: dict[tuple[str, int], str] = {}
        entries = []
        for e in kb.entries:
            rule = e.handoff
            if rule is not None and rule.department not in self.departments:
                fallback = e.department if e.department in self.departments else default
                if fallback is not None:
                    used[(e.source, rule.line)] = fallback
                    e = dataclasses.replace(e, handoff=dataclasses.replace(rule, department=fallback))
            entries.append(e)
        note = self._rules_note()
        lines = [
            f"knowledge base: {p}; until it is fixed these handoffs go to "
            f"'{used.get((p.file, p.line), default or 'the default department')}'" + (f"; {note}" if note else "")
            for p in problems
        ]
        # Logged when they change, not on every no-op reload a file watcher triggers.
        if lines != self._routing_logged:
            for line in lines:
                logger.error("%s", line)
            self._routing_logged = lines
        return KnowledgeBase(entries=tuple(entries), version=kb.version), problems

    def _log_recovery(self, kb: KnowledgeBase) -> None:
        """After a failed load, say in the log that the files it named load again: the admin's last
        sight of the log was an ERROR, and a fix that restores the served version changes nothing else."""
        if not self._failed_files:
            return
        per_file = Counter(e.source for e in kb.entries)
        fixed = sorted(f for f in self._failed_files if f in per_file)
        for file in fixed:
            logger.info(
                "knowledge base: %s loads again: %s; serving version %s", file, _entries(per_file[file]), kb.version
            )
        if not fixed:
            logger.info(
                "knowledge base in %s loads again: %s; serving version %s", self.folder, _entries(len(kb)), kb.version
            )
        self._failed_files = set()

    async def watch(self, stop: asyncio.Event | None = None) -> None:
        """Reload whenever a knowledge-base file under the folder changes; runs until cancelled or `stop`."""
        async for changes in watchfiles.awatch(self.folder, stop_event=stop, debounce=300, recursive=True):
            if any(Path(path).suffix in KB_SUFFIXES for _, path in changes):
                # Indexing a large KB takes a while; keep the event loop serving customers meanwhile.
                await asyncio.to_thread(self.reload)


def _entries(n: int) -> str:
    return f"{n} entr{'y' if n == 1 else 'ies'}"
