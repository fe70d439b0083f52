"""``seco demo``: a tiny end-to-end run (archive -> sample -> collect -> pretrain -> export -> probe -> report)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from seco.errors import ConfigError

SECTIONS = ("# seco demo report", "## 1. Scene archive", "## 2. Sampling", "## 3. Collection",
            "## 4. SeCo pre-training (on the collected store)", "## 5. Linear probe", "## 6. Export", "## Timing")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from seco.demo import QUICK, run_demo

    out = tmp_path_factory.mktemp("demo") / "out"
    with pytest.MonkeyPatch.context() as mp:  # the demo's EuroSAT step follows the caller's environment
        mp.delenv("SECO_EUROSAT_ROOT", raising=False)
        report = run_demo(out, minutes=2.0, seed=0, progress=False, **QUICK)
    assert report == out / "report.md"
    return out


def test_report_has_every_section_with_numbers_from_the_run(demo: Path) -> None:
    from seco.collect.journal import read_failures
    from seco.store import open_store

    text = (demo / "report.md").read_text()
    for s in SECTIONS:
        assert s in text, s
    n = len(open_store(demo / "collected"))
    assert f"| **collected** (in `collected/`) | **{n}** |" in text
    assert f"failures.parquet`, {len(read_failures(demo / 'collected'))} rows" in text
    for png in ("locations.png", "collect_sites.png", "pretrain/curves.png", "probe.png"):
        assert f"]({png})" in text and (demo / png).stat().st_size > 0, png
    stages = re.findall(r"^\| ([a-zA-Z][^|]*) \| [\d.]+ \| [\d.]+ \|$", text, re.M)
    assert len(stages) == 10, stages
    assert "](view/index.html)" in text and (demo / "view" / "index.html").is_file()  # seco store view, linked
    assert "## Downstream evaluation" in text and (demo / "demo_eval.json").exists()
    probe = json.loads((demo / "probe.json").read_text())
    assert set(probe) == {"SeCo (this run)", "random init"}
    assert f"{100 * probe['SeCo (this run)']['test_acc']:.1f} %" in text


def test_the_store_was_collected_from_the_archive(demo: Path) -> None:
    from seco.bands import L2A
    from seco.collect.sampling import read_locations
    from seco.demo import QUICK
    from seco.store import open_store
    from seco.synth.archive import read_manifest

    store = open_store(demo / "collected")
    assert len(store) == QUICK["collect_locations"]  # seed 0: enough spares for every rejection
    assert (store.bands, store.num_dates, store.patch_size) == (L2A, 5, QUICK["collect_patch"])
    assert "seco_collect" in store.attrs
    assert store.valid_mask().all()
    scenes = {s["id"]: s for s in read_manifest(demo / "archive")["scenes"]}
    loc = read_locations(demo / "locations.parquet")
    assert loc.config is not None and loc.config.centres is not None and len(loc.config.centres) == 3
    assert loc.windows is not None
    half = np.timedelta64(int(loc.config.dates.window_days * 86_400_000), "ms")
    for i, key in enumerate(store.keys()):
        assert key.isdigit()
        for t, m in enumerate(store.meta(i)):
            scene = scenes[m["item_id"]]  # every patch comes from a scene of the archive ...
            when = np.datetime64(m["datetime"].rstrip("Z"), "ms")
            assert abs(when - loc.windows.centre[0][t]) <= half  # ... inside its date window (same for all) ...
            assert scene["cloud_cover"] <= 10.0  # ... below the scene cloud limit
    assert (demo / "locations.png").stat().st_size > 0


def test_pretraining_ran_on_the_collected_store_and_was_exported(demo: Path) -> None:
    import yaml

    cfg = yaml.safe_load((demo / "pretrain" / "config.yaml").read_text())
    assert Path(cfg["store"]) == demo / "collected"
    for ext in (".safetensors", ".pth", ".json"):
        assert (demo / "weights" / f"seco_resnet18{ext}").stat().st_size > 0
    meta = json.loads((demo / "weights" / "seco_resnet18.json").read_text())
    assert meta["method"] == "seco" and len(meta["bands"]) == 12 and meta["training_steps"] > 0


def test_a_changed_archive_setting_is_refused(tmp_path: Path) -> None:
    from seco.demo.archive import make_or_reuse_archive

    root = tmp_path / "archive"
    root.mkdir()
    (root / "manifest.json").write_text(json.dumps({"config": {"seed": 1}}))
    with pytest.raises(ConfigError, match="other settings"):
        make_or_reuse_archive(root, seed=0, scene_px=360, passes=3)


def test_cli_refuses_a_non_positive_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from seco.cli import main

    assert main(["demo", "--out", str(tmp_path / "d"), "--minutes", "0", "--quick"]) == 2
    assert "--minutes" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_sampling_around_given_centres_is_reproducible_for_spares(tmp_path: Path) -> None:
    """The demo's sampler: custom centres are saved with the file, so the collector can draw replacements."""
    import dataclasses
    import datetime as dt

    from seco.collect.dates import DateSchedule
    from seco.collect.geo import haversine_km
    from seco.collect.sampling import SampleConfig, read_locations, sample, write_locations

    centres = (("a", 3.0, 50.0), ("b", 9.0, 45.0))
    cfg = SampleConfig(n=10, seed=4, sigma_km=2.0, centres=centres, dates=DateSchedule(end=dt.date(2022, 8, 16)))
    path = write_locations(sample(cfg), tmp_path / "loc.parquet")
    loc = read_locations(path)
    assert loc.config == sample(cfg).config and loc.config.centres == centres
    d = np.minimum(haversine_km(loc.lon, loc.lat, 3.0, 50.0), haversine_km(loc.lon, loc.lat, 9.0, 45.0))
    assert (d < 12.0).all()  # 6 sigma
    more = sample(dataclasses.replace(loc.config, n=14))
    np.testing.assert_allclose(more.lon[:10], loc.lon)
    with pytest.raises(ConfigError, match="cities"):
        SampleConfig(n=1, mode="uniform", centres=centres)
    with pytest.raises(ConfigError, match="invalid position"):
        SampleConfig(n=1, centres=(("x", 200.0, 0.0),))


def test_inconsistent_sizes_are_refused_before_work(tmp_path: Path) -> None:
    from seco.demo import run_demo

    with pytest.raises(ConfigError, match="crop"):
        run_demo(tmp_path / "a", crop=96, collect_patch=64)
    with pytest.raises(ConfigError, match="queue_size"):
        run_demo(tmp_path / "b", batch_size=48, queue_size=100)
    with pytest.raises(ConfigError, match="collect_locations"):
        run_demo(tmp_path / "c", collect_locations=8, batch_size=16, queue_size=64)
    assert not any(tmp_path.iterdir())


def test_an_interrupted_archive_is_cleared_and_foreign_files_refused(tmp_path: Path) -> None:
    from seco.demo.archive import _clear_interrupted

    partial = tmp_path / "partial"
    (partial / "S2A_31UDR_20211217_0_L2A").mkdir(parents=True)
    (partial / "collection.json").write_text("{}")
    _clear_interrupted(partial)
    assert not partial.exists()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="notes.txt"):
        _clear_interrupted(foreign)
    assert (foreign / "notes.txt").read_text() == "mine"


def test_a_saved_run_of_other_settings_is_refused(tmp_path: Path) -> None:
    import yaml

    from seco.demo.pretrain import GIVEN, _refuse_other_settings
    from seco.train.config import PretrainConfig

    cfg = PretrainConfig(store=str(tmp_path / "collected"), out=str(tmp_path / "pretrain"), crop=32,
                         batch_size=8, queue_size=64)
    (tmp_path / "pretrain").mkdir()
    saved = {k: getattr(cfg, k) for k in GIVEN}
    (tmp_path / "pretrain" / "config.yaml").write_text(yaml.safe_dump(saved))
    _refuse_other_settings(tmp_path / "pretrain", cfg)  # the same settings: continued
    (tmp_path / "pretrain" / "config.yaml").write_text(yaml.safe_dump({**saved, "crop": 48, "seed": 7}))
    with pytest.raises(ConfigError, match=r"other settings \(crop, seed\)"):
        _refuse_other_settings(tmp_path / "pretrain", cfg)


def test_failures_are_grouped_by_kind_with_distinct_scenes() -> None:
    from seco.demo.collect import failures_by_kind

    rows = [{"kind": "missing", "reason": "first", "item_id": "a"},
            {"kind": "missing", "reason": "second", "item_id": "a"},
            {"kind": "patch", "reason": "cloudy", "item_id": "b"},
            {"kind": "search", "reason": "no answer", "item_id": None}]
    got = failures_by_kind(rows)
    assert got["missing"] == {"rows": 2, "items": {"a"}, "example": "first"}
    assert got["patch"]["rows"] == 1 and got["search"]["items"] == set()
