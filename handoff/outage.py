"""Redis outages in the log: one warning when Redis is lost, a summary a minute while it lasts, one line when back."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from handoff.store import StoreError

logger = logging.getLogger(__name__)

# What "Redis is unreachable" looks like from redis-py and from the store; anything else is a bug or a
# surprise, and keeps its traceback. (redis-py's BusyLoadingError, a server reading its AOF after a
# restart, is a ConnectionError too.)
REDIS_DOWN: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError, StoreError)
SUMMARY_S = 60.0


def is_redis_down(exc: BaseException) -> bool:
    return isinstance(exc, REDIS_DOWN)


class Outage:
    """The state of one outage, shared by every loop and request of the process that uses Redis.

    Each of them retries on its own (a loop every second, each console's requests); logging each
    failure with its traceback wrote thousands of lines for a 20-second restart and buried the rest.
    """

    def __init__(self, what: str = "Redis", summary_s: float = SUMMARY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.what = what
        self.summary_s = summary_s
        self.clock = clock
        self.since: float | None = None  # None: reachable, as far as anyone here knows
        self._summarised_at = 0.0
        self._failures = 0  # since the last line
        self._total = 0
        self._where: set[str] = set()

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, where: str, exc: BaseException) -> bool:
        """Count a failure of `where` (e.g. "console events"); False when `exc` is no known outage
        error, and the caller should log it as it would any unexpected error."""
        if not is_redis_down(exc):
            return False
        now = self.clock()
        self._total += 1
        if self.since is None:
            self.since = self._summarised_at = now
            self._failures, self._where = 0, set()
            logger.warning("%s unreachable (%s: %s); retrying, and summarising failures once a minute",
                           self.what, where, _cause(exc))
            return True
        self._failures += 1
        self._where.add(where)
        if now - self._summarised_at >= self.summary_s:
            logger.warning("%s still unreachable after %.0f s: %d failed attempts since the last line (%s); "
                           "last: %s", self.what, now - self.since, self._failures,
                           ", ".join(sorted(self._where)), _cause(exc))
            self._summarised_at, self._failures, self._where = now, 0, set()
        return True

    def ok(self) -> None:
        """Redis answered; ends the outage (one line) if there was one. Cheap enough for every success."""
        if self.since is None:
            return
        lasted = self.clock() - self.since
        self.since = None
        logger.info("%s reachable again after %.0f s (%d failed attempts)", self.what, lasted, self._total)
        self._total = 0


def _cause(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# The process's one view of its Redis: every loop and the API report to it.
REDIS = Outage()
