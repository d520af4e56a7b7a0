"""One log line per failed console login, for fail2ban and the like, with a ceiling per process.

The lockouts already bound failures per address (30) and per name (10) each 15 minutes, but a spray
from many addresses over many names is bounded only by their number: past LINES_PER_MINUTE the
failures are counted, and the next line logged says how many went unlogged.
"""

from __future__ import annotations

import logging
import time
import unicodedata
from collections.abc import Callable

from bot.ratelimit import TokenBucket

logger = logging.getLogger("handoff.auth")

LINES_PER_MINUTE = 60
MAX_SHOWN_CHARS = 64
_HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp"})  # control, format (bidi overrides), line/paragraph separators


def shown(text: str) -> str:
    """`text` cut, with control, format and line-separator characters escaped: a login name is typed by
    anyone, and a newline or an ANSI escape in it must not forge or hide a log line."""
    # A backslash is doubled, so that a typed "\\n" cannot pass for an escaped newline.
    out = [ch.encode("unicode_escape").decode("ascii") if ch == "\\" or unicodedata.category(ch) in _HIDDEN else ch
           for ch in text[:MAX_SHOWN_CHARS]]  # fmt: skip
    return "".join(out) + ("…" if len(text) > MAX_SHOWN_CHARS else "")


class FailedLogins:
    """Logs failed console logins as WARNINGs, at most LINES_PER_MINUTE a minute (burst as many)."""

    def __init__(self, per_minute: int = LINES_PER_MINUTE, clock: Callable[[], float] = time.monotonic) -> None:
        self._bucket = TokenBucket(per_minute / 60.0, per_minute, clock)
        self._unlogged = 0

    def failed(self, name: str, address: str) -> None:
        if not self._bucket.allow():
            self._unlogged += 1
            return
        more = f" ({self._unlogged} earlier failed logins not logged: over {LINES_PER_MINUTE} a minute)" \
            if self._unlogged else ""  # fmt: skip
        self._unlogged = 0
        # Never the password, not even its length.
        logger.warning("console login failed for name %s at %s%s", shown(name), shown(address), more)
