"""Calendar periods (day, ISO week, month) in a time zone, as UTC instants.

A period starts at local midnight of its first day and ends at local midnight of the day after its
last, so a day is 23 or 25 hours long across a daylight-saving change. A local midnight that does
not exist (a zone that skips 00:00-01:00) resolves to the instant the clocks jump.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

PERIODS = ("day", "week", "month")


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def period_bounds(period: str, tz: ZoneInfo, at: datetime) -> tuple[datetime, datetime]:
    """The ``[start, end)`` of the ``period`` containing the instant ``at``, both aware UTC.

    Args:
        period: day, week (ISO, starting Monday) or month.
        tz: the zone whose calendar defines the period.
        at: an aware instant.
    """
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    day = at.astimezone(tz).date()
    if period == "day":
        first, after = day, day + timedelta(days=1)
    elif period == "week":
        first = day - timedelta(days=day.weekday())
        after = first + timedelta(days=7)
    elif period == "month":
        first = day.replace(day=1)
        after = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    else:
        raise ValueError(f"unknown period {period!r}")
    return _midnight(first, tz), _midnight(after, tz)
