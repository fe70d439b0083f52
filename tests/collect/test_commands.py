"""The collection commands end to end on a simulated COG archive, with the real reader: ``seco sample``,
``seco catalog``, ``seco collect`` (threads, Dask, dry run, bad input), and SIGKILL at random moments."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from seco.cli import build_parser, main
from seco.collect.catalog import open_catalog
from seco.collect.journal import STATE_DIR, read_failures
from seco.collect.patches import read_patch
from seco.collect.sampling import read_locations
from seco.store import open_store
from seco.synth.archive import read_manifest
from tests.integration.servers import archive_locations, make_test_archive

REPO = Path(__file__).resolve().parents[2]
COLLECT = ["--patch-size", "64", "--max-cloud", "60", "--max-nodata", "0", "--no-progress", "--retries", "1",
           "--backoff", "0.01"]


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    """3 UTM zones x 5 dates x 2 revisits, 360 px tiles, 2 corrupt + 1 missing asset (local files)."""
    return make_test_archive(tmp_path_factory.mktemp("archive") / "archive")


@pytest.fixture(scope="module")
def locs(archive, tmp_path_factory) -> Path:
    """12 locations (2 x 2 per site) with windows around the archive's 5 dates."""
    return archive_locations(archive, tmp_path_factory.mktemp("loc") / "loc.parquet", per_side=2)


def collect_args(locs: Path, archive: Path, out: Path, *extra: str) -> list[str]:
    return ["collect", "--locations", str(locs), "--catalog", str(archive / "catalog.parquet"), "--out", str(out),
            *COLLECT, *extra]


SECO = [sys.executable, "-m", "seco"]


# ---------------------------------------------------------------------------------------------- parsing


def test_register_adds_sample_catalog_and_collect():
    p = build_parser()
    a = p.parse_args(["collect", "--locations", "l.parquet", "--catalog", "c.parquet", "--out", "s",
                      "--max-cloud", "none", "--policy", "least-cloudy", "--scheduler", "tcp://127.0.0.1:1"])
    assert a.max_cloud is None and a.policy == "least-cloudy" and a.workers == 8 and callable(a.func)
    assert p.parse_args(["sample", "--out", "x.parquet", "--n", "3"]).mode == "cities"
    assert p.parse_args(["catalog", "build", "dir", "--out", "c.parquet"]).collection == "local"
    s = p.parse_args(["catalog", "search", "--catalog", "c", "--bbox", "1,2,3,4", "--start", "2020-01-01",
                      "--end", "2020-02-01"])
    assert s.bbox == (1.0, 2.0, 3.0, 4.0)


def test_seco_cli_registers_the_collection_commands():
    """seco/cli.py must call seco.collect.commands.register(sub) (the lead's one-line change)."""
    from seco.cli import build_parser as cli_parser

    choices = next(a for a in cli_parser()._actions if a.dest == "command").choices
    assert {"sample", "catalog", "collect"} <= set(choices), "add `register(sub)` from seco.collect.commands"


# ---------------------------------------------------------------------------------------------- commands


def test_sample_and_catalog_search_commands(archive, tmp_path, capsys):
    out = tmp_path / "l.parquet"
    assert main(["sample", "--out", str(out), "--n", "5", "--seed", "2", "--end", "2024-01-01", "--n-dates", "3"]) == 0
    assert "wrote 5 locations" in capsys.readouterr().out
    loc = read_locations(out)
    assert len(loc) == 5 and loc.windows is not None and loc.windows.start.shape == (5, 3)
    site = read_manifest(archive)["sites"][0]
    assert main(["catalog", "search", "--catalog", str(archive / "catalog.parquet"), "--bbox",
                 f"{site['lon']},{site['lat']},{site['lon']},{site['lat']}", "--start", "2021-01-01",
                 "--end", "2023-01-01", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 10  # 5 dates x 2 revisits of the site


def test_collect_end_to_end_matches_direct_reads(archive, locs, tmp_path, capsys):
    out = tmp_path / "s.zarr"
    assert main(collect_args(locs, archive, out, "--workers", "4")) == 0
    text = capsys.readouterr().out
    assert "locations/s" in text and "patches/s" in text and "failures table" in text
    s = open_store(out)
    loc = read_locations(locs)
    assert s.bands[0] == "B01" and len(s.bands) == 12 and s.num_dates == 5 and s.patch_size == 64
    assert 0 < len(s) <= len(loc), read_failures(out)
    keys = [int(k) for k in s.keys()]
    assert keys == sorted(keys)  # the file's order (no spares: the file has no sampling config)
    cat = open_catalog(archive / "catalog.parquet")
    by_id = {it.id: it for it in cat.search((-180, -90, 180, 90), "2000-01-01", "2100-01-01")}
    for i in range(len(s)):
        j = keys[i]
        for t, m in enumerate(s.meta(i)):
            start, end = loc.windows.for_location(j)[t]
            item = by_id[m["item_id"]]
            assert start <= item.datetime <= end and item.cloud_cover <= 60
            direct = read_patch(item, float(loc.lon[j]), float(loc.lat[j]), 64)
            np.testing.assert_array_equal(s.read(i)[t], direct.data)  # harmonised, on the 10 m grid
            assert m["nodata_fraction"] == 0.0 and m["cloud_fraction"] <= 0.6
    # every broken asset that was a candidate is in the failures table, with its reason; nothing else is
    expected = {(f["item"], "missing" if f["kind"] == "missing" else "read") for f in read_manifest(archive)["faults"]}
    rows = read_failures(out)
    recorded = {(r["item_id"], r["kind"]) for r in rows if r["kind"] in ("read", "missing")}
    assert recorded and recorded <= expected
    assert all(r["href"] and r["href"].endswith(".tif") for r in rows if r["kind"] in ("read", "missing"))
    rejected = [r for r in rows if r["kind"] == "window"]
    assert len(s) + len({r["location_id"] for r in rejected}) == len(loc)


def test_dask_scheduler_gives_the_same_store(archive, locs, tmp_path):
    distributed = pytest.importorskip("distributed")
    assert main(collect_args(locs, archive, tmp_path / "threads.zarr", "--workers", "2")) == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp://",
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        assert main(collect_args(locs, archive, tmp_path / "dask.zarr", "--scheduler",
                                 cluster.scheduler_address)) == 0
    a, b = open_store(tmp_path / "threads.zarr"), open_store(tmp_path / "dask.zarr")
    assert a.keys() == b.keys() and len(a) > 0
    for i in range(len(a)):
        np.testing.assert_array_equal(a.read(i), b.read(i))
        assert a.meta(i) == b.meta(i)


def test_seco_collect_never_imports_torch(archive, locs, tmp_path):
    code = ("import sys\nfrom seco.cli import main\n"
            f"rc = main({collect_args(locs, archive, tmp_path / 's.zarr', '--dry-run')!r})\n"
            "print(rc, 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "0 False"


def test_dry_run_prints_the_estimate_and_writes_nothing(archive, locs, tmp_path, capsys):
    out = tmp_path / "s.zarr"
    assert main(collect_args(locs, archive, out, "--dry-run")) == 0
    text = capsys.readouterr().out
    assert "12 locations x 5 dates = 60 patches" in text and "60 catalog searches" in text
    assert "HTTP requests" in text and "probed from" in text and "512 px tiles" in text
    assert not out.exists()


def test_bad_input_exits_2_before_any_work(archive, locs, tmp_path, capsys):
    notstore = tmp_path / "mine"
    notstore.mkdir()
    (notstore / "keep.txt").write_text("x")
    cases = [
        (collect_args(tmp_path / "nope.parquet", archive, tmp_path / "a"), "does not exist"),
        (collect_args(locs, archive, notstore), "not a seco store"),
        (["collect", "--locations", str(locs), "--catalog", "http://127.0.0.1:9/stac", "--out",
          str(tmp_path / "b"), *COLLECT, "--retries", "0"], "cannot open the STAC API"),
        (collect_args(locs, archive, tmp_path / "c", "--bands", "l1c"), "lacks assets for band(s) B10"),
        (collect_args(locs, archive, tmp_path / "d", "--max-nodata", "3"), "max-nodata"),
        (collect_args(locs, archive, tmp_path / "e", "--workers", "0"), "workers"),
    ]
    for args, message in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert message in err and err.startswith("seco collect: error:"), (message, err)
    assert (notstore / "keep.txt").read_text() == "x"
    assert not any((tmp_path / x).exists() for x in "abcde")


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_sigkill_at_random_moments_gives_the_uninterrupted_store(archive, locs, tmp_path):
    cmd = SECO
    full = tmp_path / "full.zarr"
    done = subprocess.run([*cmd, *collect_args(locs, archive, full, "--workers", "3")], capture_output=True,
                          text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr
    killed = tmp_path / "killed.zarr"
    journal = killed / STATE_DIR / "journal.jsonl"
    rng = random.Random(20261121)
    kills, partial = 0, []
    for _ in range(4):  # bounded: 4 kills, each a seeded moment: after 0-2 more decisions, plus 0-150 ms
        before, more, delay = _lines(journal), rng.randint(0, 2), rng.uniform(0.0, 0.15)
        proc = subprocess.Popen([*cmd, *collect_args(locs, archive, killed, "--workers", "3")], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while proc.poll() is None and _lines(journal) < before + more and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(delay)
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        kills += 1
        if (killed / "zarr.json").exists():
            partial.append(len(open_store(killed)))
    final = subprocess.run([*cmd, *collect_args(locs, archive, killed, "--workers", "3")], capture_output=True,
                           text=True, timeout=300, cwd=REPO)
    assert final.returncode == 0, final.stderr
    a, b = open_store(full), open_store(killed)
    assert kills == 4 and any(0 < n < len(a) for n in partial), (kills, partial)
    assert a.keys() == b.keys() and len(set(b.keys())) == len(b)  # no duplicates, no holes, same order
    for i in range(len(a)):
        np.testing.assert_array_equal(a.read(i), b.read(i))
        assert a.meta(i) == b.meta(i)
    np.testing.assert_array_equal(a.valid_mask(), b.valid_mask())
    np.testing.assert_array_equal(a.histogram(), b.histogram())
    assert read_failures(full) == read_failures(killed)
    assert (killed / STATE_DIR / "summary.json").is_file()


def test_collect_that_collects_nothing_fails_with_the_reason(archive, tmp_path, capsys):
    """Locations around cities far from the archive's three sites: every one is rejected (no scene in its
    windows). The run says so and exits 2 instead of 0."""
    far = tmp_path / "far.parquet"
    assert main(["sample", "--out", str(far), "--n", "3", "--seed", "5", "--end", "2024-01-01"]) == 0
    capsys.readouterr()
    assert main(collect_args(far, archive, tmp_path / "s.zarr", "--workers", "2")) == 2
    captured = capsys.readouterr()
    assert "nothing was collected: every one of the" in captured.err and "--window-days" in captured.err
    assert "rejected location" in captured.out
