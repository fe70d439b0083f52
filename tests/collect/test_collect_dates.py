"""Date schedule: spacing, windows, reference distribution, determinism."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from seco.collect.dates import DateSchedule, date_windows
from seco.errors import ConfigError

END = dt.date(2024, 6, 1)


def test_five_dates_twelve_weeks_apart_oldest_first():
    w = date_windows(1000, seed=0, schedule=DateSchedule(end=END))
    assert w.centre.shape == (1000, 5)
    steps = np.diff(w.centre, axis=1)
    assert np.all(steps == np.timedelta64(84, "D"))  # 12 weeks, increasing in time
    ref = w.centre[:, -1]
    end = np.datetime64(END, "ms")
    assert np.all(ref <= end) and np.all(ref > end - np.timedelta64(365, "D"))
    assert np.all(ref.astype("datetime64[D]") == ref)  # whole days, as the official randint(365)
    assert np.all(w.centre[:, 0] == ref - np.timedelta64(4 * 84, "D"))


@pytest.mark.parametrize("half", [7.5, 15.0])
def test_windows_are_centred_with_the_half_width(half):
    w = date_windows(50, seed=1, schedule=DateSchedule(window_days=half, end=END))
    np.testing.assert_array_equal(w.centre - w.start, np.full(w.centre.shape, np.timedelta64(int(half * 24), "h")))
    np.testing.assert_array_equal(w.end - w.centre, w.centre - w.start)


def test_reference_is_uniform_over_the_year():
    w = date_windows(20000, seed=2, schedule=DateSchedule(end=END))
    back = (np.datetime64(END, "D") - w.centre[:, -1].astype("datetime64[D]")).astype(int)
    assert back.min() == 0 and back.max() == 364
    # mean of U{0..364} = 182, sd 105 -> standard error 0.75 day
    assert back.mean() == pytest.approx(182, abs=4)
    counts = np.bincount(back // 73, minlength=5)  # five 73-day bins, 4000 each expected
    assert np.all(np.abs(counts - 4000) < 300)


def test_seeded_and_prefix_stable():
    s = DateSchedule(end=END)
    a, b = date_windows(100, seed=5, schedule=s), date_windows(100, seed=5, schedule=s)
    np.testing.assert_array_equal(a.start, b.start)
    np.testing.assert_array_equal(date_windows(10, seed=5, schedule=s).centre, a.centre[:10])
    assert not np.array_equal(date_windows(100, seed=6, schedule=s).centre, a.centre)


def test_default_end_is_four_weeks_ago():
    s = DateSchedule().resolved()
    assert s.end == dt.datetime.now(dt.UTC).date() - dt.timedelta(weeks=4)
    assert DateSchedule.from_dict(s.to_dict()) == s


def test_custom_schedule():
    w = date_windows(3, seed=0, schedule=DateSchedule(n_dates=3, step_weeks=4, end=END))
    assert w.centre.shape == (3, 3)
    assert np.all(np.diff(w.centre, axis=1) == np.timedelta64(28, "D"))


@pytest.mark.parametrize("kw", [dict(n_dates=0), dict(step_weeks=0), dict(window_days=0), dict(span_days=0),
                                dict(end="2024-01-01")])
def test_invalid_schedule(kw):
    with pytest.raises(ConfigError):
        DateSchedule(**kw)


def test_invalid_seed_and_n():
    with pytest.raises(ConfigError, match="seed"):
        date_windows(3, seed=-1)
    with pytest.raises(ConfigError, match="n="):
        date_windows(-3, seed=0)
