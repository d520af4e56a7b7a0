"""Business hours per department: weekly spans like "mon-fri 09:00-18:00", holidays, next opening."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

logger = logging.getLogger(__name__)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SPEC_RE = re.compile(r"^\s*([a-z,\- ]+?)\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
DAY_MINUTES = 24 * 60


@dataclass(frozen=True)
class Span:
    """Open on `weekday` (0 = Monday) from `start` to `end`, in minutes after local midnight."""

    weekday: int
    start: int
    end: int


def _days(text: str) -> list[int]:
    out: list[int] = []
    for part in text.replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"'{part}' is not a day or day range such as mon-fri (days: {', '.join(DAYS)})")
        a, b = DAYS.index(first), DAYS.index(last or first)
        # A range may wrap the week ("fri-mon").
        out += [(a + i) % 7 for i in range((b - a) % 7 + 1)]
    return out


def parse_spec(spec: str) -> list[Span]:
    """Spans of one line like "mon-fri 09:00-18:00" or "sat,sun 10:00-14:00"; ValueError if not."""
    m = SPEC_RE.match(spec.lower())
    if not m:
        raise ValueError(f"'{spec}' is not like 'mon-fri 09:00-18:00'")
    h1, m1, h2, m2 = (int(g) for g in m.groups()[1:])
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if h1 > 23 or m1 > 59 or m2 > 59 or end > DAY_MINUTES:
        raise ValueError(f"'{spec}': times go from 00:00 to 24:00")
    if end <= start:
        raise ValueError(
            f"'{spec}': closing time must be after opening time (split overnight hours in two lines)"
        )
    return [Span(day, start, end) for day in _days(m.group(1))]


@dataclass(frozen=True)
class BusinessHours:
    """When a department has people; no spans at all means always open."""

    spans: tuple[Span, ...] = ()
    holidays: frozenset[date] = field(default_factory=frozenset)
    timezone: str = "UTC"

    @property
    def always_open(self) -> bool:
        return not self.spans

    def _local(self, now: datetime) -> datetime:
        if now.tzinfo is None:
            raise ValueError("business hours need an aware datetime")
        return now.astimezone(ZoneInfo(self.timezone))

    def is_open(self, now: datetime) -> bool:
        if self.always_open:
            return True
        local = self._local(now)
        if local.date() in self.holidays:
            return False
        minute = local.hour * 60 + local.minute
        return any(s.weekday == local.weekday() and s.start <= minute < s.end for s in self.spans)

    def next_opening(self, now: datetime) -> datetime | None:
        """None when open now; else the next time it opens (aware, in the department's zone)."""
        if self.is_open(now):
            return None
        local = self._local(now)
        tz = ZoneInfo(self.timezone)
        # Two weeks plus every holiday is always enough to reach an open day if one exists.
        for offset in range(15 + len(self.holidays)):
            day = local.date() + timedelta(days=offset)
            if day in self.holidays:
                continue
            for span in sorted((s for s in self.spans if s.weekday == day.weekday()), key=lambda s: s.start):
                opening = datetime.combine(day, time(span.start // 60, span.start % 60), tzinfo=tz)
                if opening > local:
                    return opening
        return None
