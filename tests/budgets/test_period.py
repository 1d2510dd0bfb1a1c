"""Period math: calendar days, ISO weeks and months in a time zone, across daylight-saving changes."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_cost_tracker.budgets import PERIODS, period_bounds

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Lord_Howe",
         "Pacific/Chatham", "America/Santiago", "Pacific/Apia", "America/Havana"]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_day_across_spring_forward_is_23_hours() -> None:
    """The Berlin day of the spring change starts at local midnight (UTC+1) and lasts 23 hours."""
    start, end = period_bounds("day", ZoneInfo("Europe/Berlin"), utc(2025, 3, 30, 12))
    assert (start, end) == (utc(2025, 3, 29, 23), utc(2025, 3, 30, 22))
    assert end - start == timedelta(hours=23)


def test_day_across_fall_back_is_25_hours() -> None:
    """The Berlin day of the autumn change lasts 25 hours."""
    start, end = period_bounds("day", ZoneInfo("Europe/Berlin"), utc(2025, 10, 26, 12))
    assert end - start == timedelta(hours=25)


def test_week_starts_monday_and_month_in_zone() -> None:
    """Weeks are ISO (Monday); months start at local midnight of the 1st, here in a +05:30 zone."""
    kolkata = ZoneInfo("Asia/Kolkata")
    start, end = period_bounds("week", kolkata, utc(2025, 1, 1, 12))  # a Wednesday
    assert start.astimezone(kolkata) == datetime(2024, 12, 30, tzinfo=kolkata)
    assert end - start == timedelta(days=7)
    start, end = period_bounds("month", kolkata, utc(2024, 12, 31, 19))  # already 1 Jan in Kolkata
    assert (start, end) == (utc(2024, 12, 31, 18, 30), utc(2025, 1, 31, 18, 30))
    start, end = period_bounds("month", ZoneInfo("UTC"), utc(2024, 2, 10))
    assert (start, end) == (utc(2024, 2, 1), utc(2024, 3, 1))


def test_skipped_midnight_starts_when_clocks_jump() -> None:
    """In a zone whose clocks skip 00:00-01:00 (Havana, March 2025) the day starts at the jump."""
    havana = ZoneInfo("America/Havana")
    start, end = period_bounds("day", havana, utc(2025, 3, 9, 12))
    assert start == utc(2025, 3, 9, 5)  # 00:00 CST = 01:00 CDT
    assert end - start == timedelta(hours=23)


def test_naive_and_unknown_are_refused() -> None:
    """A naive instant or an unknown period is a programming error."""
    with pytest.raises(ValueError):
        period_bounds("day", ZoneInfo("UTC"), datetime(2025, 1, 1))
    with pytest.raises(ValueError):
        period_bounds("year", ZoneInfo("UTC"), utc(2025, 1, 1))


@settings(max_examples=300, deadline=None)
@given(seconds=st.integers(min_value=946_684_800, max_value=2_524_608_000), zone=st.sampled_from(ZONES),
       period=st.sampled_from(PERIODS))
def test_periods_tile_time(seconds: int, zone: str, period: str) -> None:
    """The period holds the instant, starts at a local midnight on its first day, and the next one starts at its end."""
    tz = ZoneInfo(zone)
    at = datetime.fromtimestamp(seconds, UTC)
    start, end = period_bounds(period, tz, at)
    assert start <= at < end
    assert period_bounds(period, tz, end) == (end, period_bounds(period, tz, end)[1])
    assert period_bounds(period, tz, end - timedelta(microseconds=1))[0] == start
    local = start.astimezone(tz)
    assert (start - timedelta(microseconds=1)).astimezone(tz).date() < local.date()  # first instant of its day
    assert local.time() == datetime.min.time() or local.hour == 1  # midnight, or the jump over a skipped one
    if period == "week":
        assert local.weekday() == 0
    if period == "month":
        assert local.day == 1
    assert timedelta(hours=22) <= end - start <= timedelta(days=32)
    assert int(start.timestamp()) % 900 == 0 and int(end.timestamp()) % 900 == 0  # on the ledger's buckets
