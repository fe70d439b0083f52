"""``seco store view`` without a browser: what it selects, writes, summarises and refuses."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from view_helpers import BANDS, BRIGHT, FAILED_RADIOMETRY, MISSING, WARNED_RULE, N, P, T, make_store

from seco.errors import BandError, OutputError, StoreError
from seco.store import open_store
from seco.view import ViewConfig, build_view
from seco.view import quicklook as Q
from seco.view.select import choose
from seco.view.summary import DN_BIN, date_views, optical_histograms


def page_data(out: Path, i: int) -> dict:
    html = (out / "loc" / f"{i}.html").read_text()
    return json.loads(re.search(r"window\.SECO_LOC = (.*?);</script>", html, re.S).group(1))


def script_data(path: Path, name: str) -> dict:
    return json.loads(path.read_text().removeprefix(f"window.{name} = ").rstrip().removesuffix(";"))


def test_view_writes_index_pages_and_quicklooks(view_store, tmp_path):
    out = tmp_path / "view"
    r = build_view(view_store, out, ViewConfig(max_locations=3, seed=1), progress=False)
    locs = script_data(out / "data" / "locations.js", "SECO_LOCATIONS")
    viewed = locs["i"]
    # the seeded sample plus every warned location (dn_warning, failures-table radiometry row)
    assert {WARNED_RULE, FAILED_RADIOMETRY} <= set(viewed)
    assert set(choose(N, 3, 1, [])) <= set(viewed)
    assert r.viewed == len(viewed) == r.written and (out / "index.html").is_file()
    for i in viewed:
        d = page_data(out, i)
        assert d["key"] == str(i)
        valid = [row for row in d["dates"] if row["valid"]]
        for row in valid:  # every valid date has its RGB and false colour, and the files exist
            assert set(row["images"]) == {"rgb", "fc"}
            for src in row["images"].values():
                assert (out / "loc" / src).resolve().is_file()
        assert len(valid) == (T - 1 if i == MISSING else T)
    warned = page_data(out, WARNED_RULE)
    assert any("no processing baseline" in w for w in warned["warnings"])
    assert warned["dates"][0]["dn_shift"] == "-1000"
    summary = script_data(out / "data" / "summary.js", "SECO_SUMMARY")
    kinds = {k["kind"]: k["count"] for k in summary["failures"]["kinds"]}
    assert kinds == {"patch": 2, "window": 1, "radiometry-rule": 1}
    assert summary["store"]["locations"] == N and len(summary["map"]["points"]) == 2 * N


def test_a_date_off_by_1000_dn_is_flagged_and_stays_brighter(view_store, tmp_path):
    out = tmp_path / "view"
    build_view(view_store, out, ViewConfig(max_locations=N), progress=False)
    d = page_data(out, BRIGHT)
    assert any(w.startswith("date 2:") and "offset-kept" in w for w in d["warnings"])
    from PIL import Image

    means = [np.asarray(Image.open(out / "loc" / row["images"]["rgb"]))[..., :3].mean() for row in d["dates"]]
    others = [m for t, m in enumerate(means) if t != 2]
    assert means[2] > max(others) + 40  # one stretch per location: the bright date is not normalised away
    assert not [w for w in page_data(out, 0)["warnings"]]


def test_stretch_is_the_median_of_the_dates_percentiles():
    rng = np.random.default_rng(0)
    imgs = rng.integers(100, 1100, size=(4, 3, 16, 16)).astype(np.uint16)
    imgs[1] = 9000  # one cloud-white date
    valid = np.array([True, True, True, False])
    imgs[3] = 60000  # invalid: ignored
    got = Q.location_stretch(imgs, valid)
    sub = imgs[[0, 2], :, ::2, ::2]
    for c, (lo, hi) in enumerate(got):
        per = [np.percentile(sub[k, c], [2, 98]) for k in range(2)] + [np.array([9000.0, 9000.0])]
        assert (lo, hi) == pytest.approx(tuple(np.median(per, axis=0)))
    rgba = Q.optical_rgba(np.array([[[0, 500]], [[10, 500]], [[10, 500]]], np.uint16), [(0, 1000)] * 3)
    assert rgba[0, 0, 3] == 0 and rgba[0, 1, 3] == 255 and rgba[0, 1, 0] == 127


def test_rerun_adds_only_what_is_missing(view_store, tmp_path):
    out = tmp_path / "view"
    first = build_view(view_store, out, ViewConfig(max_locations=4), progress=False)
    had = set(script_data(out / "data" / "locations.js", "SECO_LOCATIONS")["i"])
    kept = out / "loc" / f"{min(had - {WARNED_RULE})}.html"
    before = kept.stat().st_mtime_ns
    (out / "loc" / f"{WARNED_RULE}.html").unlink()
    r = build_view(view_store, out, ViewConfig(max_locations=6), progress=False)
    now = set(script_data(out / "data" / "locations.js", "SECO_LOCATIONS")["i"])
    assert first.written == len(had) and r.viewed == len(now)
    assert r.written == len(now - had) + 1 and r.already == len(now & had) - 1  # new ones + the one removed
    assert kept.stat().st_mtime_ns == before
    r = build_view(view_store, out, ViewConfig(max_locations=6, false_colour="B12,B08,B04"), progress=False)
    assert r.written == r.viewed and r.notes  # other composites: every page rebuilt, and said so
    assert page_data(out, min(now))["composites"][1]["title"] == "false colour (B12, B08, B04)"


def test_store_wide_views_match_the_store(view_store):
    s = open_store(view_store)
    h = optical_histograms(s)
    raw = s.histogram()
    for c in range(len(BANDS)):
        assert sum(h["counts"][c]) == int(raw[c, 1:].sum())  # every non-zero DN counted once
        assert h["counts"][c][1500 // DN_BIN] == int(raw[c, 1501:1601].sum())
    d = date_views(s)
    assert d["valid_counts"] == [0, 0, 0, 1, N - 1]
    # 84 days between consecutive dates, 168 across location 7's missing date
    assert d["spacing"][12] == (N - 1) * (T - 1) + 1 and d["spacing"][24] == 1 and sum(d["spacing"]) == N * (T - 1) - 1


def test_check_report_is_shown_and_its_locations_viewed(view_store, tmp_path):
    from seco.store.check import Finding

    out = tmp_path / "view"
    out.mkdir()
    f = Finding(6, "6", None, "radiometry", "date 1 looks odd", "warning")
    (out / "check.json").write_text(json.dumps({"checked": N, "findings": [f.to_dict()], "notes": []}))
    build_view(view_store, out, ViewConfig(max_locations=0), progress=False)
    summary = script_data(out / "data" / "summary.js", "SECO_SUMMARY")
    assert summary["check"]["counts"] == [{"check": "radiometry", "severity": "warning", "count": 1}]
    assert 6 in script_data(out / "data" / "locations.js", "SECO_LOCATIONS")["i"]
    (out / "bad.json").write_text("{}")
    with pytest.raises(StoreError, match="not the JSON of `seco store check --json`"):
        build_view(view_store, out, ViewConfig(check_report=str(out / "bad.json")), progress=False)


def test_object_store_views_like_a_local_one(tmp_path):
    url = "memory://seco-view-test/store.zarr"
    make_store(url, n=3)
    r = build_view(url, tmp_path / "view", ViewConfig(max_locations=3), progress=False)
    assert r.viewed == 3 and all((tmp_path / "view" / "loc" / f"{i}.html").is_file() for i in range(3))
    assert page_data(tmp_path / "view", 2)["dates"][0]["images"]["rgb"] == "../ql/2/0-rgb.webp"


def test_s1_group_gets_its_composite_metadata_and_db_histograms(tmp_path):
    make_store(tmp_path / "s1.zarr", n=3, s1=True)
    out = tmp_path / "view"
    build_view(tmp_path / "s1.zarr", out, ViewConfig(max_locations=3), progress=False)
    d = page_data(out, 1)
    assert d["composites"][-1]["id"] == "s1" and d["composites"][-1]["units"] == "dB"
    assert [("s1" in row["images"]) for row in d["dates"]] == [True, False, True, True]
    assert d["dates"][0]["s1"]["orbit_state"] == "descending" and d["dates"][1]["s1"]["valid"] is False
    from PIL import Image

    img = np.asarray(Image.open(out / "loc" / d["dates"][0]["images"]["s1"]))  # (h, w, 4)
    assert img[:, :1, 3].max() == 0 and img[:, -4:, 3].min() == 255  # the NaN edge is transparent
    s = script_data(out / "data" / "summary.js", "SECO_SUMMARY")["s1"]
    assert s["source"] == "whole store" and s["bands"] == ["VV", "VH"]
    edges = np.asarray(s["edges"])
    peak = [edges[int(np.argmax(c))] for c in s["counts"]]
    assert peak[0] == pytest.approx(-10, abs=1.5) and peak[1] == pytest.approx(-17, abs=1.5)
    assert sum(s["counts"][0]) == 3 * (T - 1) * P * (P - 3)  # every valid S1 pixel of the store, once


def test_bad_input_raises_typed_errors(view_store, tmp_path):
    with pytest.raises(StoreError, match="is not a seco store"):
        build_view(tmp_path, tmp_path / "v1", progress=False)
    with pytest.raises(OutputError, match="is inside the store"):
        build_view(view_store, view_store / "view", progress=False)
    with pytest.raises(BandError, match="B05.*B02, B03, B04, B08, B11, B12"):
        build_view(view_store, tmp_path / "v2", ViewConfig(false_colour="B05,B04,B03"), progress=False)
    assert not (tmp_path / "v2").exists() and not (view_store / "view").exists()


@pytest.mark.parametrize("case", ["not-a-store", "inside", "band"])
def test_cli_bad_input_is_one_line_and_exit_2(view_store, tmp_path, case):
    store, out, extra = str(view_store), str(tmp_path / "v"), []
    if case == "not-a-store":
        store = str(tmp_path)
    elif case == "inside":
        out = str(view_store / "v")
    else:
        extra = ["--false-colour", "B08,B04,B01"]
    p = subprocess.run([sys.executable, "-m", "seco", "store", "view", store, "--out", out, "--no-progress", *extra],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    lines = [x for x in p.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, p.stderr
    assert not Path(out).exists()
