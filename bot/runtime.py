"""Everything one Relevo worker needs, built from Settings: store, knowledge base, engine, tasks."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Coroutine
from types import TracebackType
from typing import Any

import redis.asyncio as aioredis

from bot.engine import Engine
from bot.idle import IdleSweeper
from bot.mood import MoodConfigError, MoodDetector
from bot.outbox import Outbox
from bot.session_secret import session_secret
from bot.settings import Settings
from bot.stats import BotStats
from faq.library import Library
from faq.policy import Thresholds
from handoff import embedded
from handoff.conversations import Conversations
from handoff.retention import Retention
from handoff.rules import HandoffRules, rules_of
from handoff.rules_stamp import RulesAtStart
from handoff.service import HandoffService
from handoff.store import Store
from handoff.store_checks import check_store

logger = logging.getLogger(__name__)

STOP_TIMEOUT_S = 5.0
# Under the data folder: every clean knowledge-base load is kept there, for a start with a broken file.
FAQ_LAST_GOOD_DIR = "faq-last-good"


class Runtime:
    """Started once with `await Runtime.start(settings)` (or `async with`), closed once with `close()`."""

    def __init__(self, settings: Settings, store: Store, library: Library, mood: MoodDetector | None,
                 rules: HandoffRules | None = None, *, session_secret: bytes) -> None:
        self.settings = settings
        # Signs widget session tokens and console cookies (bot/session_secret.py).
        self.session_secret = session_secret
        self.store = store
        self.redis: aioredis.Redis = store.redis
        self.library = library
        self.mood = mood
        self.conversations = Conversations(self.redis)
        self.outbox = Outbox(self.redis)
        self.handoff = HandoffService(settings, self.redis, self.conversations, self.outbox, library, rules)
        self.escalator = self.handoff
        self.stats = BotStats(self.redis)
        self.engine = Engine(settings, self.conversations, library, self.outbox, self.handoff, mood,
                             customer_side=self.handoff, stats=self.stats)
        self.idle = IdleSweeper(self.redis, self.conversations, self.engine,
                                settings.conversation.idle_close_minutes,
                                retention=Retention(self.redis, settings.store.keep_closed_days))
        self._tasks: list[asyncio.Task[None]] = []
        self._kb_stop = asyncio.Event()
        # Ends only when the embedded Redis could not be kept running (StoreError): `relevo serve` stops.
        self.store_watch: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, settings: Settings, *, background: bool = True) -> Runtime:
        """Connect Redis (REDIS_URL or embedded), load the knowledge base and mood lexicons, start
        the background tasks (KB watch, idle sweeper) unless `background` is False (tests)."""
        store = await Store.connect(settings.store.redis_url, settings.data_dir)
        try:
            # Before the secret: a store that lost its data is named first, then what that means for it.
            await check_store(store, settings.data_dir)
            secret = await session_secret(settings, store.redis)
            thresholds = Thresholds(settings.faq.answer_threshold, settings.faq.clarify_threshold,
                                    settings.faq.max_suggestions)
            hs = settings.handoff
            # A broken rules file stops start-up with `file:line: message` (RulesError).
            rules = rules_of(settings)
            # Indexing a large knowledge base takes a moment: keep the loop free meanwhile. Its handoff
            # departments are checked against the rules' (a typo is logged, and routed to a real queue).
            # A folder that does not load serves the last good copy (healthz says `stale`); with no
            # copy either, start-up stops with `file:line: message` (KnowledgeBaseError), like a
            # broken rules file, rather than answer every customer "not understood".
            # Read once, at start (the knowledge base is reloaded, the rules are not): a later edit is
            # named in the knowledge base's misrouting messages as needing a restart.
            at_start = await asyncio.to_thread(RulesAtStart, settings.handoff_rules, settings.data_dir)
            library = await asyncio.to_thread(Library, settings.faq_dir, thresholds, set(rules.departments),
                                              hs.default_department, settings.data_dir / FAQ_LAST_GOOD_DIR,
                                              at_start.note)  # fmt: skip
            library.require()
            mood = await asyncio.to_thread(_load_mood, settings)
        except BaseException:
            await store.close()
            raise
        runtime = cls(settings, store, library, mood, rules, session_secret=secret)
        if background:
            await runtime._start_background()
            settle_startup_objects()
        return runtime

    async def _start_background(self) -> None:
        if self.settings.faq.reload:
            self._spawn(self.library.watch(self._kb_stop), "faq-watch")
        self._spawn(self.idle.run(), "idle-sweeper")
        self._spawn(self.stats.run(self._kb_stop), "bot-figures")
        if embedded.owns(self.store.embedded_server):
            # Not _spawn: its failure has been logged already, and `serve` reads it to exit non-zero.
            self.store_watch = asyncio.create_task(embedded.watch(self.store), name="embedded-redis-watch")
        await self.handoff.start()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(_report)
        self._tasks.append(task)

    async def close(self) -> None:
        """Stop background tasks, then close Redis (and stop the embedded server)."""
        await self.handoff.close()
        self._kb_stop.set()
        if self.store_watch is not None and not self.store_watch.done():
            self.store_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.store_watch
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT_S)
        self._tasks.clear()
        try:
            await self.stats.flush()  # the figures of the last few seconds
        except Exception:
            logger.warning("bot figures: the last ones could not be added to Redis", exc_info=True)
        await self.store.close()

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


# The youngest generation is collected after this many new container objects, not Python's 700. A
# customer turn allocates hundreds, nearly all freed by reference counting, and each collection walked
# the survivors again and promoted them towards full collections: at 1 000 customers and 300 msg/s the
# collector ran ~700 times in 30 s for ~850 ms, and ~20 times for ~250 ms with this (bench/ws_load.py).
GC_YOUNG_THRESHOLD = 20_000
GC_OLDER_THRESHOLDS = (20, 10)


def settle_startup_objects() -> None:
    """Take what start-up allocated (modules, the knowledge-base index, the lexicons: ~130k objects)
    out of the cyclic garbage collector's walks, and make its walks rarer.

    Start-up objects live as long as the process; without this every full collection walks them
    all, a pause of ~100 ms under load that shows in the reply p99 (bench/ws_load.py). Frozen objects
    are still freed by reference counting when let go (a reload)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *GC_OLDER_THRESHOLDS)


def _load_mood(settings: Settings) -> MoodDetector | None:
    """The mood detector; None (with a warning) when there is no lexicon folder at all.

    A broken lexicon raises MoodConfigError (`file:line: message`) and stops start-up: running on
    without it would quietly stop handing upset customers to a person over an admin's typo.
    """
    if not settings.mood_dir.is_dir():
        logger.warning("mood: no lexicon folder at %s; running without mood detection", settings.mood_dir)
        return None
    try:
        return MoodDetector.from_dir(settings.mood_dir, settings.mood.threshold,
                                     settings.conversation.default_lang)
    except OSError as exc:
        raise MoodConfigError(f"{settings.mood_dir}: cannot read the lexicons: {exc}") from None


def _report(task: asyncio.Task[None]) -> None:
    """A background task that dies is an operator's problem: say so in the log."""
    if not task.cancelled() and task.exception() is not None:
        logger.error("background task %s stopped", task.get_name(), exc_info=task.exception())
