"""The live knowledge base of a running Relevo: the last good load, swapped whole on reload."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

import watchfiles

from faq.loader import load_dir
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


class Library:
    """Holds the knowledge base in use. Readers take one snapshot, so a reload never shows them half a KB."""

    def __init__(self, folder: Path, thresholds: Thresholds) -> None:
        self.folder = Path(folder)
        self.thresholds = thresholds
        self._loaded = _Loaded(KnowledgeBase(), None)
        self.status = ReloadStatus()
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
            logger.error(
                "knowledge base in %s has %d error(s); still serving version %s",
                self.folder,
                len(result.errors),
                self._loaded.kb.version or "(none)",
            )
            self.status = ReloadStatus(False, self._loaded.kb.version, result.errors, result.warnings)
            return False
        self.status = ReloadStatus(True, result.kb.version, [], result.warnings)
        if result.kb.version == self._loaded.kb.version:
            return False
        # Index fully before the swap: one attribute assignment is what readers see change.
        self._loaded = _Loaded(result.kb, Matcher(result.kb))
        logger.info(
            "knowledge base %s loaded: %d entries from %s", result.kb.version, len(result.kb), self.folder
        )
        return True

    async def watch(self, stop: asyncio.Event | None = None) -> None:
        """Reload whenever a knowledge-base file under the folder changes; runs until cancelled or `stop`."""
        async for changes in watchfiles.awatch(self.folder, stop_event=stop, debounce=300, recursive=True):
            if any(Path(path).suffix in KB_SUFFIXES for _, path in changes):
                # Indexing a large KB takes a while; keep the event loop serving customers meanwhile.
                await asyncio.to_thread(self.reload)
