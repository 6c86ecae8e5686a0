"""Working-time arithmetic for SLA targets.

A `BusinessCalendar` knows which days are working days (configured weekdays,
corrected by China's statutory holidays and adjusted working days) and which
periods of a working day are open (several per day, e.g. a lunch break).

Conventions:
- Periods are half-open, [start, end): at 18:00 a 09:00–18:00 desk is closed.
- Every datetime must be timezone-aware; results are in the calendar's zone.
- `add_working_days(start, n)` adds n times one working day's open time, so a
  start inside business hours is due at the same clock time n working days
  later, and a start outside hours (before opening, after closing, a day off)
  is due at the close of the n-th working day, counting the day work begins.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import chinese_calendar

from service.policy import BusinessHours

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A calendar with no working time at all would loop forever; ten years of
# searching is far beyond any SLA and turns that into an error instead.
_MAX_DAYS = 3660


def _minutes(value: str) -> int:
    try:
        hours, minutes = value.strip().split(":")
        h, m = int(hours), int(minutes)
    except ValueError as exc:
        raise ValueError(f"business hours time {value!r} is not HH:MM") from exc
    if not (0 <= m < 60 and (0 <= h < 24 or (h == 24 and m == 0))):
        raise ValueError(f"business hours time {value!r} is out of range")
    return h * 60 + m


def require_aware(dt: datetime, name: str = "datetime") -> datetime:
    if not isinstance(dt, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(dt).__name__}")
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {dt.isoformat()}")
    return dt


class BusinessCalendar:
    def __init__(self, hours: BusinessHours, tz: str = "Asia/Shanghai", use_china_holidays: bool = True):
        self.tz = ZoneInfo(tz)
        self.use_china_holidays = use_china_holidays
        self.weekdays = frozenset(_WEEKDAYS.index(day) for day in hours.weekdays)
        periods = sorted((_minutes(start), _minutes(end)) for start, end in hours.periods)
        if not periods:
            raise ValueError("business hours need at least one period")
        for (start, end), following in zip(periods, periods[1:] + [None]):
            if start >= end:
                raise ValueError(f"business hours period {start // 60:02d}:{start % 60:02d} ends before it starts")
            if following is not None and following[0] < end:
                raise ValueError("business hours periods overlap")
        self.periods: tuple[tuple[int, int], ...] = tuple(periods)
        self.day_length = timedelta(minutes=sum(end - start for start, end in periods))
        self._day_cache: dict[date, bool] = {}

    # --- days ---------------------------------------------------------------

    def is_working_day(self, d: date) -> bool:
        if isinstance(d, datetime):
            d = self.local(d).date()
        cached = self._day_cache.get(d)
        if cached is None:
            cached = self._day_cache[d] = self._working_day(d)
        return cached

    def _working_day(self, d: date) -> bool:
        by_weekday = d.weekday() in self.weekdays
        if not self.use_china_holidays:
            return by_weekday
        try:
            is_holiday, name = chinese_calendar.get_holiday_detail(d)
        except NotImplementedError:
            # The package only knows the years the State Council has published;
            # outside them the configured weekdays are the best rule we have.
            return by_weekday
        if name is None:
            return by_weekday  # an ordinary day: the team's own weekdays decide
        # A named day is either a statutory holiday (off for everyone) or an
        # adjusted working day (调休, e.g. a working Saturday: on for everyone).
        return not is_holiday

    # --- periods --------------------------------------------------------------

    def local(self, dt: datetime, name: str = "datetime") -> datetime:
        return require_aware(dt, name).astimezone(self.tz)

    def _at(self, d: date, minutes: int) -> datetime:
        if minutes == 24 * 60:
            return datetime.combine(d + timedelta(days=1), time(0), tzinfo=self.tz)
        return datetime.combine(d, time(minutes // 60, minutes % 60), tzinfo=self.tz)

    def open_periods(self, d: date) -> list[tuple[datetime, datetime]]:
        """The open periods of one local date (empty on a day off)."""
        if not self.is_working_day(d):
            return []
        return [(self._at(d, start), self._at(d, end)) for start, end in self.periods]

    def _intervals_from(self, dt: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Open intervals that end after `dt`, clipped to start no earlier than `dt`."""
        day = dt.date()
        for _ in range(_MAX_DAYS):
            for start, end in self.open_periods(day):
                if end > dt:
                    yield max(start, dt), end
            day += timedelta(days=1)
        raise ValueError(f"no working time within {_MAX_DAYS} days of {dt.isoformat()}")

    @staticmethod
    def _span(a: datetime, b: datetime) -> timedelta:
        # Subtract in UTC: same-zone aware subtraction is wall-clock in Python.
        return b.astimezone(timezone.utc) - a.astimezone(timezone.utc)

    def _plus(self, dt: datetime, delta: timedelta) -> datetime:
        return (dt.astimezone(timezone.utc) + delta).astimezone(self.tz)

    # --- arithmetic -----------------------------------------------------------

    def is_open(self, dt: datetime) -> bool:
        dt = self.local(dt)
        return any(start <= dt < end for start, end in self.open_periods(dt.date()))

    def next_open(self, dt: datetime) -> datetime:
        """`dt` itself when the desk is open then, else the start of the next open period."""
        dt = self.local(dt)
        start, _ = next(self._intervals_from(dt))
        return start

    def add_working_time(self, start: datetime, delta: timedelta) -> datetime:
        """The moment `delta` of open time has elapsed after `start`.

        Work that fits exactly ends at a period's close (18:00), not at the next
        opening, so a promise built on it is never later than needed.
        """
        start = self.local(start, "start")
        if delta < timedelta(0):
            raise ValueError("working time to add must not be negative")
        if delta == timedelta(0):
            return start
        remaining = delta
        for seg_start, seg_end in self._intervals_from(start):
            available = self._span(seg_start, seg_end)
            if remaining <= available:
                return self._plus(seg_start, remaining)
            remaining -= available
        raise AssertionError("unreachable")  # _intervals_from raises first

    def add_working_days(self, start: datetime, n: float) -> datetime:
        """Due time n working days after `start` (see the module docstring)."""
        if n < 0:
            raise ValueError("working days to add must not be negative")
        return self.add_working_time(start, self.day_length * n)

    def working_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Open time from a to b; negative when b is before a."""
        a, b = self.local(a, "a"), self.local(b, "b")
        if b < a:
            return -self.working_time_between(b, a)
        total = timedelta(0)
        for seg_start, seg_end in self._intervals_from(a):
            if seg_start >= b:
                break
            total += self._span(seg_start, min(seg_end, b))
        return total
