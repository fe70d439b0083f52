"""`seco store check` runs the radiometric consistency check beside integrity, and says when it cannot."""

from __future__ import annotations

import json

import numpy as np
from store_helpers import location

from seco.cli import main
from seco.store import create_store

T, P = 4, 32


def _store(path, bands=("B02", "B03", "B04", "B08"), shifted=None):
    """Three locations of T dates with dark objects near DN 300; ``shifted=(loc, date)`` keeps +1000 there."""
    with create_store(path, bands, T, P) as w:
        for i in range(3):
            loc = location(i, num_dates=T, patch=P, bands=len(bands))
            rng = np.random.default_rng(i)
            images = rng.integers(300, 1500, size=(T, len(bands), P, P)).astype(np.uint16)
            if shifted is not None and shifted[0] == i:
                images[shifted[1]] += 1000
            valid = np.ones(T, bool)
            metas = [m or location(i, num_dates=T, patch=P)["dates_meta"][0] for m in loc["dates_meta"]]
            w.append(loc["key"], images, valid, metas, None)
    return path


def test_planted_offset_is_a_warning_and_integrity_still_passes(tmp_path, capsys):
    path = _store(tmp_path / "s.zarr", shifted=(1, 2))
    rc = main(["store", "check", str(path), "--no-progress", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert rc == 0  # a suspicious date is a warning: the location stays usable
    assert report["checks"] == ["integrity", "radiometry"]
    flagged = [(f["location"], f["check"], f["severity"]) for f in report["findings"]]
    assert flagged == [(1, "radiometry", "warning")]
    assert "date 2" in report["findings"][0]["problem"]
    assert report["bad_locations"] == []


def test_clean_store_has_no_findings(tmp_path, capsys):
    path = _store(tmp_path / "s.zarr")
    assert main(["store", "check", str(path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "warning" not in out
    assert "3 location(s) checked (integrity, radiometry)" in out


def test_store_without_blue_and_green_skips_the_check_with_a_note(tmp_path, capsys):
    path = _store(tmp_path / "s.zarr", bands=("B04", "B08"))
    assert main(["store", "check", str(path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "note: radiometry check not run" in out and "(integrity)" in out
    # asked for by name, the same is an error before any work
    assert main(["store", "check", str(path), "--checks", "radiometry", "--no-progress"]) == 2
    assert "leave it out of --checks" in capsys.readouterr().err
