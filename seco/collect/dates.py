"""The date schedule of a SeCo location: a random reference date and four earlier dates about 3 months apart,
each with a search window.

What the official downloader (``datasets/seco_downloader.py`` of ServiceNow/seasonal-contrast) does, and what
this module reproduces:

- fixed dates ``reference, reference - 12 weeks, - 24, - 36, - 48 weeks`` where ``reference = today - 4 weeks``
  (so recent acquisitions have reached the archive); steps go *backwards* in time;
- per location, the whole set is shifted back by ``randint(365)`` whole days, so the reference is uniform over
  the year that ends at ``today - 4 weeks``;
- each date becomes the window ``[date - 7.5 days, date + 7.5 days]`` (``get_period(date, days=15)``: 15 days
  in total). The paper's text speaks of a 15-day window; read as a half-width that would be twice as wide.
  ``window_days`` here is the half-width, default 7.5 (the code's behaviour); pass 15 for the literal reading.

Differences: dates are returned oldest first (the official list is newest first), ``end`` is configurable
(default: today minus 4 weeks, UTC), and windows are exact timestamps (centres at 00:00 UTC, so a 7.5-day
half-width gives edges at 12:00 UTC) rather than calendar-day strings.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from seco.errors import ConfigError

#: Fixed extra seed word so the date stream of a seed is independent of its location stream.
DATE_STREAM = 0x5EC0DA7E
#: The official downloader's archive lag.
DEFAULT_LAG = dt.timedelta(weeks=4)


@dataclass(frozen=True)
class DateSchedule:
    """How dates and windows are drawn for each location.

    Attributes:
        n_dates: dates per location (the reference included).
        step_weeks: spacing between consecutive dates, going back from the reference.
        window_days: half-width of each search window in days (official code: 7.5, i.e. 15 days in total).
        span_days: the reference is ``end - k`` days with ``k`` uniform in ``0 .. span_days - 1``.
        end: latest possible reference date; ``None`` = today (UTC) minus 4 weeks, resolved by
            :meth:`resolved`.
    """

    n_dates: int = 5
    step_weeks: float = 12.0
    window_days: float = 7.5
    span_days: int = 365
    end: dt.date | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.n_dates, int) or self.n_dates < 1:
            raise ConfigError(f"n_dates={self.n_dates!r} must be a positive integer (SeCo uses 5)")
        if not self.step_weeks > 0:
            raise ConfigError(f"step_weeks={self.step_weeks!r} must be > 0 (SeCo uses 12, about 3 months)")
        if not 0 < self.window_days <= 183:
            raise ConfigError(
                f"window_days={self.window_days!r} must be in (0, 183]; it is the half-width of the search "
                "window (official code 7.5, the paper's 15 read as a half-width)"
            )
        if not isinstance(self.span_days, int) or self.span_days < 1:
            raise ConfigError(f"span_days={self.span_days!r} must be a positive integer (default 365)")
        if self.end is not None and not isinstance(self.end, dt.date):
            raise ConfigError(f"end={self.end!r} must be a datetime.date, e.g. date(2024, 6, 1), or None")

    def resolved(self) -> DateSchedule:
        """This schedule with ``end`` fixed (today minus 4 weeks, UTC, when unset)."""
        if self.end is not None:
            return DateSchedule(self.n_dates, self.step_weeks, self.window_days, self.span_days,
                                _as_date(self.end))
        today = dt.datetime.now(dt.UTC).date()
        return DateSchedule(self.n_dates, self.step_weeks, self.window_days, self.span_days, today - DEFAULT_LAG)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``end`` as ISO date)."""
        d = asdict(self)
        d["end"] = None if self.end is None else _as_date(self.end).isoformat()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DateSchedule:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        if d.get("end") is not None:
            d["end"] = dt.date.fromisoformat(d["end"])
        return cls(**d)


@dataclass(frozen=True)
class DateWindows:
    """Dates and search windows of N locations, T dates each, oldest first (UTC, ``datetime64[ms]``).

    Attributes:
        centre: (N, T) the scheduled dates.
        start: (N, T) window starts.
        end: (N, T) window ends.
    """

    centre: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def __len__(self) -> int:
        return int(self.centre.shape[0])

    def for_location(self, i: int) -> list[tuple[dt.datetime, dt.datetime]]:
        """The T windows of location ``i`` as timezone-aware (start, end) pairs."""
        return [(_to_datetime(s), _to_datetime(e)) for s, e in zip(self.start[i], self.end[i], strict=True)]


def _as_date(d: dt.date) -> dt.date:
    return d.date() if isinstance(d, dt.datetime) else d


def _to_datetime(x: np.datetime64) -> dt.datetime:
    ms = int(x.astype("datetime64[ms]").astype(np.int64))
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms)


def date_windows(n: int, seed: int | np.random.Generator, schedule: DateSchedule | None = None) -> DateWindows:
    """Draw the dates and windows of ``n`` locations.

    Args:
        n: number of locations.
        seed: an integer seed (the date stream of that seed; location ``i`` gets the same dates whatever ``n``
            is) or a numpy Generator to draw from.
        schedule: the schedule; ``None`` = the SeCo defaults with ``end`` = today minus 4 weeks.

    Returns:
        DateWindows with arrays of shape (n, schedule.n_dates).
    """
    if not isinstance(n, int | np.integer) or n < 0:
        raise ConfigError(f"n={n!r} must be a non-negative integer")
    s = (schedule or DateSchedule()).resolved()
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng([_check_seed(seed), DATE_STREAM])
    back = rng.integers(0, s.span_days, size=int(n))  # (N,) whole days before `end`
    assert s.end is not None
    end_ms = np.datetime64(s.end, "ms")
    day_ms, week_ms = 86_400_000, 7 * 86_400_000
    ref = end_ms - back.astype(np.int64) * np.timedelta64(day_ms, "ms")  # (N,)
    k = np.arange(s.n_dates - 1, -1, -1)  # oldest first: T-1 .. 0 steps back
    steps = np.round(k * s.step_weeks * week_ms).astype(np.int64).astype("timedelta64[ms]")  # (T,)
    centre = ref[:, None] - steps[None, :]  # (N, T)
    half = np.timedelta64(int(round(s.window_days * day_ms)), "ms")
    return DateWindows(centre=centre, start=centre - half, end=centre + half)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"seed={seed!r} must be a non-negative integer")
    return int(seed)
