from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from handoff.hours import BusinessHours, parse_spec
from tests.handoff.queue_helpers import rules

MADRID = ZoneInfo("Europe/Madrid")


def hours(*specs: str, holidays: tuple[date, ...] = (), tz: str = "Europe/Madrid") -> BusinessHours:
    spans = tuple(s for spec in specs for s in parse_spec(spec))
    return BusinessHours(spans, frozenset(holidays), tz)


def test_parse_spec_days_ranges_and_errors() -> None:
    assert [s.weekday for s in parse_spec("mon-fri 09:00-18:00")] == [0, 1, 2, 3, 4]
    assert [s.weekday for s in parse_spec("fri-mon 10:00-12:00")] == [4, 5, 6, 0]
    assert [(s.weekday, s.start, s.end) for s in parse_spec("sat,sun 10:30-24:00")] == [
        (5, 630, 1440),
        (6, 630, 1440),
    ]
    for bad in ("mon-fri", "mondays 09:00-10:00", "mon 18:00-09:00", "mon 25:00-26:00", "mon 09:61-10:00"):
        with pytest.raises(ValueError):
            parse_spec(bad)


def test_open_and_next_opening_in_the_departments_zone() -> None:
    h = hours("mon-fri 09:00-18:00", "sat 10:00-14:00")
    wed_noon = datetime(2026, 11, 25, 12, 0, tzinfo=MADRID)
    assert h.is_open(wed_noon) and h.next_opening(wed_noon) is None
    wed_evening = datetime(2026, 11, 25, 18, 0, tzinfo=MADRID)  # closing time is not open
    assert h.next_opening(wed_evening) == datetime(2026, 11, 26, 9, 0, tzinfo=MADRID)
    sat_late = datetime(2026, 11, 28, 15, 0, tzinfo=MADRID)
    assert h.next_opening(sat_late) == datetime(2026, 11, 30, 9, 0, tzinfo=MADRID)
    early = datetime(2026, 11, 25, 6, 59, tzinfo=UTC)  # 07:59 in Madrid
    assert h.next_opening(early) == datetime(2026, 11, 25, 9, 0, tzinfo=MADRID)


def test_holidays_and_dst() -> None:
    h = hours("mon-fri 09:00-18:00", holidays=(date(2026, 12, 25),))
    thu_night = datetime(2026, 12, 24, 20, 0, tzinfo=MADRID)
    assert h.next_opening(thu_night) == datetime(2026, 12, 28, 9, 0, tzinfo=MADRID)
    # Summer time starts on Sunday 29 March 2026: Monday 09:00 is 07:00 UTC, not 08:00.
    sunday = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)
    opening = h.next_opening(sunday)
    assert opening is not None and opening.astimezone(UTC) == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)


def test_always_open_and_never_open() -> None:
    now = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    assert BusinessHours().is_open(now) and BusinessHours().next_opening(now) is None
    closed = BusinessHours(tuple(parse_spec("mon 09:00-10:00")), frozenset(), "UTC")
    everything_off = BusinessHours(
        closed.spans,
        frozenset(date(2026, 11, 30) + (date(2026, 12, 7) - date(2026, 11, 30)) * i for i in range(60)),
        "UTC",
    )
    assert everything_off.next_opening(now) is None
    with pytest.raises(ValueError):
        closed.is_open(datetime(2026, 11, 25, 3, 0))


def test_departments_of_the_rules_file_have_hours() -> None:
    general = rules().departments["general"].hours
    christmas = datetime(2026, 12, 25, 12, 0, tzinfo=UTC)
    assert not general.is_open(christmas)
    assert general.next_opening(christmas) == datetime(2026, 12, 26, 10, 0, tzinfo=ZoneInfo("UTC"))
