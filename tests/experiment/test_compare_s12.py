"""``seco experiment compare --sensors s1+s2``: a tiny run end to end, resume, the cloudy-optics scenes, the
zero-filled inputs, the goal verdicts and the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from seco.cli import main
from seco.errors import BandError, ConfigError
from seco.experiment.config import CompareConfig, display_name
from seco.experiment.multisensor import (
    Images,
    arm_bands,
    cloudy_images,
    covers,
    names_of,
    native,
    with_clouds,
)
from seco.experiment.report_s12 import goals
from seco.experiment.run import check

TINY = ["--scale", "tiny", "--sensors", "s1+s2", "--no-progress", "--set", "probe_locations=36"]
ARMS = "seco-s12@s1+s2,random"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("exp12") / "cmp"
    assert main(["experiment", "compare", "--out", str(out), "--methods", ARMS, "--seeds", "1", *TINY]) == 0
    return out


def test_tiny_multisensor_run_scores_every_input_and_cloud_level(tiny: Path) -> None:
    res = json.loads((tiny / "results.json").read_text())
    cells = {c["method"]: c for c in res["cells"]}
    assert set(cells) == {"seco-s12@s1+s2", "random"}
    s12 = cells["seco-s12@s1+s2"]
    assert s12["train"]["steps"] == 2 and (tiny / "cells" / "seco-s12@s1+s2-seed0" / "pretrain" / "config.yaml").is_file()
    meta = json.loads(next((tiny / "cells" / "seco-s12@s1+s2-seed0" / "weights").glob("*.json")).read_text())
    assert "VV" in json.dumps(meta)  # the export takes both sensors
    lc = [f"landcover:{i}" for i in ("s2", "s1", "s1+s2")]
    assert set(s12["tasks"]) == {*lc, "cloudy0:s1+s2", "cloudy50:s1+s2", "cloudy100:s1+s2"}
    assert set(cells["random"]["tasks"]) == {*lc, *(f"cloudy{p}:{i}" for p in (0, 50, 100) for i in ("s2", "s1", "s1+s2"))}
    assert all(0 <= v["value"] <= 1 for c in cells.values() for v in c["tasks"].values())
    # S1 does not see clouds: a random init on S1 inputs scores the same at every cloud level
    r = cells["random"]["tasks"]
    assert r["cloudy0:s1"]["value"] == r["cloudy50:s1"]["value"] == r["cloudy100:s1"]["value"]
    text = (tiny / "report.md").read_text()
    assert "## Land-cover linear probe by input" in text and "## Cloudy optics" in text
    assert "| SeCo-S12 (S1+S2) | S1+S2 |" in text and "## The issue's goals at this scale" in text
    assert "| S1-only probe: pre-trained with S1 > random init | SeCo-S12 (S1+S2) | random init on S1 only |" in text
    v = res["summary"]["landcover:s1"]["seco-s12@s1+s2"]["mean"]
    assert f"{v:.1f}" in text
    assert not (tiny / "data" / "synth_oscd").exists()  # no S2 change detection in this mode


def test_multisensor_rerun_reuses_finished_cells(tiny: Path) -> None:
    done = tiny / "cells" / "seco-s12@s1+s2-seed0" / "result.json"
    before = done.stat().st_mtime_ns
    assert main(["experiment", "compare", "--out", str(tiny), "--methods", ARMS, "--seeds", "1", *TINY]) == 0
    assert done.stat().st_mtime_ns == before
    with pytest.raises(ConfigError, match="other settings"):  # the S2 comparison into the same folder
        check(CompareConfig(**{**CompareConfig.load(tiny / "experiment.yaml").to_dict(), "sensors": "s2",
                               "methods": ("random",)}))


def test_cloudy_scenes_change_only_the_optics() -> None:
    clear, overcast = cloudy_images(12, 32, 32, seed=5)
    s2 = [k for k, b in enumerate(clear.names) if b not in ("VV", "VH")]
    s1 = [clear.names.index("VV"), clear.names.index("VH")]
    assert torch.equal(clear.x[:, s1], overcast.x[:, s1]) and np.array_equal(clear.y, overcast.y)
    assert not torch.isnan(clear.x).any()
    assert overcast.x[:, s2].mean() > 2 * clear.x[:, s2].mean()  # bright cloud tops over the whole patch
    y = np.array([0] * 4 + [1] * 4 + [2] * 4)
    a, b = Images(torch.zeros(12, 1, 2, 2), ("B02",), y), Images(torch.ones(12, 1, 2, 2), ("B02",), y)
    for f, k in ((0.0, 0), (0.5, 2), (1.0, 4)):
        mixed = with_clouds(a, b, f, seed=0).x[:, 0, 0, 0]
        assert [int(mixed[y == c].sum()) for c in range(3)] == [k, k, k]  # that share of every class


def test_one_sensor_given_to_a_two_sensor_backbone_gets_zeros() -> None:
    x = torch.arange(3 * 2 * 2, dtype=torch.float32).reshape(1, 3, 2, 2) + 1
    im = Images(x, ("B04", "VV", "VH"), np.zeros(1))
    out = im.select(("B04", "VV", "VH"), "s1")
    assert out[:, 0].abs().sum() == 0 and torch.equal(out[:, 1:], x[:, 1:])
    assert torch.equal(im.select(("VH", "B04"), "s1+s2"), x[:, [2, 0]])
    assert covers(("B04", "VV"), "s1") and not covers(("B04",), "s1+s2") and covers(("B04", "VV"), "s1+s2")
    assert native(("B04", "VV")) == "s1+s2" and native(("VV", "VH")) == "s1" and native(("B04",)) == "s2"
    assert names_of("s1") == ("VV", "VH") and names_of("s1+s2")[-2:] == ("VV", "VH")
    assert display_name("seco@s1+s2") == "SeCo (S1+S2)" and display_name("random") == "random init"


@pytest.mark.parametrize(
    ("methods", "sensors", "error", "message"),
    [
        (("seco@s1",), "s2", ConfigError, "need --sensors s1\\+s2"),
        (("seco-s12@s2",), "s1+s2", ConfigError, "needs s1 bands too"),
        (("random@s1",), "s1+s2", ConfigError, "give random"),
        (("seco@B99",), "s1+s2", BandError, "unknown band"),
    ],
)
def test_bad_arms_are_refused(methods: tuple[str, ...], sensors: str, error: type[Exception], message: str,
                              tmp_path: Path) -> None:
    from seco.bands import L2A, S1_BANDS

    cfg = CompareConfig(out=str(tmp_path), methods=methods, sensors=sensors)
    with pytest.raises(error, match=message):
        arm_bands(cfg, (*L2A, *S1_BANDS))


def test_bad_multisensor_settings_fail_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cmp"
    assert main(["experiment", "compare", "--out", str(out), *TINY, "--eurosat", str(tmp_path)]) == 2
    assert "Sentinel-2 tasks" in capsys.readouterr().err
    from seco.synth import make_store

    s2 = make_store(tmp_path / "s2", num_locations=8, patch_size=32, progress=False)
    assert main(["experiment", "compare", "--out", str(out), *TINY, "--store", str(s2)]) == 2
    err = capsys.readouterr().err
    assert "no Sentinel-1 group" in err and err.count("\n") == 1
    with pytest.raises(ConfigError, match="--sensors 's3'"):
        CompareConfig(out=str(out), sensors="s3")
    assert not out.exists()


def test_goal_verdicts_from_cells() -> None:
    from seco.experiment.report import summarize

    vals = {  # arm -> task -> three seeds (%)
        "seco@s2": {"cloudy50:s2": (50, 51, 52), "cloudy100:s2": (20, 21, 19), "landcover:s2": (80, 81, 82)},
        "seco@s1+s2": {"cloudy50:s1+s2": (70, 71, 72), "cloudy100:s1+s2": (60, 61, 59), "landcover:s1": (60, 61, 62)},
        "seco-s12@s1+s2": {"cloudy50:s1+s2": (50, 52, 51), "cloudy100:s1+s2": (62, 61, 60),
                           "landcover:s1": (70, 71, 72)},
        "random": {"landcover:s1": (60, 62, 61), "cloudy50:s1+s2": (40, 41, 42), "cloudy50:s2": (40, 41, 39)},
    }
    cells = [{"method": arm, "seed": s, "tasks": {t: {"value": v[s] / 100} for t, v in tasks.items()}}
             for arm, tasks in vals.items() for s in range(3)]
    rows = {(r["goal"], r["a"], r["b"]): r["verdict"] for r in goals(summarize(cells), tuple(vals))}
    s1 = "S1-only probe: pre-trained with S1 > random init"
    assert rows[(s1, "seco-s12@s1+s2", "random")] == "holds"
    assert rows[(s1, "seco@s1+s2", "random")].startswith("not shown")
    assert rows[("cloudy optics 50 %: S1+S2 > S2-only", "seco@s1+s2", "seco@s2")] == "holds"
    assert rows[("cloudy optics 50 %: S1+S2 > S2-only", "seco-s12@s1+s2", "seco@s2")].startswith("not shown")
    assert rows[("cloudy optics 100 %: S1+S2 > S2-only", "seco-s12@s1+s2", "seco@s2")] == "holds"
    assert rows[("cloudy optics 50 %: S1+S2 > S2-only", "random", "random")].startswith("not shown")
    assert rows[("multi-sensor vs early fusion (S1 only probe)", "seco-s12@s1+s2", "seco@s1+s2")] == "holds"
    assert ("cloudy optics 100 %: S1+S2 > S2-only", "random", "random") not in rows  # not scored: no row


def test_rerun_with_change_detection_adds_it_to_finished_cells(tiny: Path) -> None:
    """Radar change detection (floods; 0/50/100 % of the cities' second S2 date overcast) added to a finished cell."""
    done = tiny / "cells" / "seco-s12@s1+s2-seed0" / "result.json"
    before = json.loads(done.read_text())
    args = ["experiment", "compare", "--out", str(tiny), "--methods", "seco-s12@s1+s2", "--seeds", "1", *TINY]
    assert main([*args, "--set", "s12_change=true"]) == 0
    r = json.loads(done.read_text())
    change = {k: v for k, v in r["tasks"].items() if k.startswith("change")}
    assert set(change) == {"change0:s1+s2", "change50:s1+s2", "change100:s1+s2"}
    assert all(v["value"] == v["average_precision"] and 0 <= v["value"] <= 1 for v in change.values())
    assert {k: v for k, v in r["tasks"].items() if k not in change} == before["tasks"]  # the probes are kept
    m = json.loads((tiny / "cells" / "seco-s12@s1+s2-seed0" / "change100-s1+s2" / "metrics.json").read_text())
    assert "VV" in json.dumps(m)
    assert "## Cloudy change detection" in (tiny / "report.md").read_text()
    manifest = json.loads((tiny / "data" / "synth_oscd_s12_cloud100" / "synth_oscd.json").read_text())
    assert manifest["config"]["s1"] and manifest["config"]["cloud_fraction"] == 1.0
