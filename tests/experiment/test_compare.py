"""``seco experiment compare``: a tiny run end to end through the CLI, resume, bad input, the verdict rule."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from seco.cli import main
from seco.errors import ConfigError, DatasetError
from seco.experiment.config import CompareConfig
from seco.experiment.report import compare, summarize, verdicts
from seco.experiment.run import check

TINY = ["--scale", "tiny", "--eurosat", "none", "--oscd", "none", "--no-progress"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("exp") / "cmp"
    assert main(["experiment", "compare", "--out", str(out), "--methods", "seco,random", "--seeds", "1", *TINY]) == 0
    return out


def test_tiny_run_writes_every_cell_config_and_a_report_from_the_numbers(tiny: Path) -> None:
    res = json.loads((tiny / "results.json").read_text())
    cells = {(c["method"], c["seed"]) for c in res["cells"]}
    assert cells == {("seco", 0), ("random", 0)}
    seco = next(c for c in res["cells"] if c["method"] == "seco")
    assert seco["train"]["steps"] == 2  # the tiny budget, reached
    assert (tiny / "cells" / "seco-seed0" / "pretrain" / "config.yaml").is_file()
    assert (tiny / "cells" / "seco-seed0" / "change" / "config.yaml").is_file()
    assert (tiny / "experiment.yaml").is_file() and (tiny / "comparison.png").stat().st_size > 0
    m = json.loads((tiny / "cells" / "random-seed0" / "change" / "metrics.json").read_text())
    assert m["normalization_policy"] == "data" and m["normalization"].startswith("train city statistics")
    text = (tiny / "report.md").read_text()
    for task in ("landcover", "change"):
        for method in ("seco", "random"):
            v = res["summary"][task][method]
            assert v["values"] == [100 * next(c for c in res["cells"] if c["method"] == method)["tasks"][task]["value"]]
            assert f"{v['mean']:.1f}" in text
    assert "## The paper's claims at this scale" in text and "OSCD F1: SeCo 46.94" in text
    spaces = seco["subspaces"]
    assert set(spaces) == {"backbone", "head0", "head1", "head2"}  # SeCo's three heads
    assert all(0 <= v["landcover"] <= 1 and -2 <= v["season_consistency"] <= 2 for v in spaces.values())
    assert "## Per-subspace features" in text and "| SeCo | head2 |" in text


def test_rerun_reuses_finished_cells_and_refuses_other_settings(tiny: Path) -> None:
    before = (tiny / "cells" / "seco-seed0" / "result.json").stat().st_mtime_ns
    assert main(["experiment", "compare", "--out", str(tiny), "--methods", "seco,random", "--seeds", "1", *TINY]) == 0
    assert (tiny / "cells" / "seco-seed0" / "result.json").stat().st_mtime_ns == before
    with pytest.raises(ConfigError, match="other settings"):
        check(CompareConfig(out=str(tiny), steps=3, batch_size=8, crop=32, queue_size=32, synth_locations=16,
                            synth_patch=32))


OSCD_SAMPLE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "oscd"


def test_a_cell_stopped_before_its_first_checkpoint_starts_over(tiny: Path) -> None:
    """A pre-training folder without last.ckpt (killed early) is redone, not refused as 'already holds a run'."""
    stale = tiny / "cells" / "moco-tp-seed0" / "pretrain"
    stale.mkdir(parents=True)
    for name in ("config.yaml", "metrics.csv"):
        (stale / name).write_bytes((tiny / "cells" / "seco-seed0" / "pretrain" / name).read_bytes())
    args = ["experiment", "compare", "--out", str(tiny), "--methods", "moco-tp", "--seeds", "1", *TINY]
    assert main(args) == 0
    r = json.loads((tiny / "cells" / "moco-tp-seed0" / "result.json").read_text())
    assert r["train"]["steps"] == 2 and (stale / "last.ckpt").is_file()


def _tiny_cfg(out: Path, **kw: object) -> CompareConfig:
    return CompareConfig(out=str(out), steps=2, batch_size=8, crop=32, queue_size=32, synth_locations=16,
                         synth_patch=32, probe_locations=60, probe_patch=32, cd_cities=2, cd_size=64, cd_epochs=1,
                         cd_patch=32, cd_batch=4, oscd_epochs=1, **kw)  # type: ignore[arg-type]


def test_oscd_may_be_added_to_an_experiment_without_it_but_not_dropped(tmp_path: Path) -> None:
    sample = tmp_path / "oscd"
    (sample / "Onera Satellite Change Detection dataset - Images").mkdir(parents=True)
    _tiny_cfg(tmp_path).save(tmp_path / "experiment.yaml")
    check(_tiny_cfg(tmp_path, oscd=str(sample)))  # adding it: allowed
    _tiny_cfg(tmp_path, oscd=str(sample)).save(tmp_path / "experiment.yaml")
    with pytest.raises(ConfigError, match="oscd"):
        check(_tiny_cfg(tmp_path))  # dropping it again: other settings
    with pytest.raises(ConfigError, match="steps"):  # adding OSCD does not excuse other differences
        _tiny_cfg(tmp_path).save(tmp_path / "experiment.yaml")
        check(CompareConfig(**{**_tiny_cfg(tmp_path, oscd=str(sample)).to_dict(), "steps": 3,
                               "methods": ("seco",)}))


@pytest.mark.skipif(not OSCD_SAMPLE.is_dir(), reason="../shared/data/oscd not present")
def test_rerun_with_oscd_adds_it_to_finished_cells(tiny: Path) -> None:
    """The real OSCD sample, 1 decoder epoch, on the finished random-init cell (~20 s)."""
    args = ["experiment", "compare", "--out", str(tiny), "--methods", "random", "--seeds", "1", "--scale", "tiny",
            "--eurosat", "none", "--no-progress"]
    before = json.loads((tiny / "cells" / "random-seed0" / "result.json").read_text())
    assert main([*args, "--oscd", str(OSCD_SAMPLE)]) == 0
    r = json.loads((tiny / "cells" / "random-seed0" / "result.json").read_text())
    assert {"oscd", "oscd_ap"} <= set(r["tasks"]) and (tiny / "cells" / "random-seed0" / "oscd" / "metrics.json").is_file()
    assert r["tasks"]["landcover"] == before["tasks"]["landcover"]  # the finished tasks are kept, not redone
    assert r["tasks"]["change"] == before["tasks"]["change"]
    assert "oscd" in json.loads((tiny / "results.json").read_text())["summary"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--methods", "seco,simclr"], "unknown method"),
        (["--seeds", "0"], "--seeds 0 must be an integer >= 1"),
        (["--batch-size", "64"], "fewer than one batch of 64"),
        (["--eurosat", "/nonexistent/eurosat"], "is not a folder"),
        (["--set", "nope=1"], "use KEY=VALUE with KEY one of"),
        (["--set", "cd_cities=many"], "'many' is not an integer"),
        (["--set", "cd_patch=48"], "cd_patch 48 must be a multiple of 32"),
    ],
)
def test_bad_input_fails_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                         message: str) -> None:
    out = tmp_path / "cmp"
    base = ["--scale", "tiny", "--oscd", "none", "--no-progress"]
    if "--eurosat" not in args:
        base += ["--eurosat", "none"]
    assert main(["experiment", "compare", "--out", str(out), *base, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()  # nothing was made


def test_a_given_store_too_small_for_the_batch(tmp_path: Path) -> None:
    from seco.synth import make_store

    store = make_store(tmp_path / "s", num_locations=4, patch_size=32, progress=False)
    with pytest.raises(ConfigError, match="holds 4 locations, fewer than one batch of 8"):
        check(CompareConfig(out=str(tmp_path / "o"), store=str(store), batch_size=8, queue_size=32, crop=32))
    with pytest.raises(DatasetError):
        check(CompareConfig(out=str(tmp_path / "o"), store=str(tmp_path / "missing"), batch_size=8, queue_size=32))


def test_verdict_rule() -> None:
    a = {"mean": 70.0, "std": 1.0, "n": 3}
    b = {"mean": 60.0, "std": 1.0, "n": 3}
    close = {"mean": 69.5, "std": 1.0, "n": 3}
    assert compare(a, b, ">")[0] == "holds"
    assert compare(b, a, ">")[0] == "reversed" and compare(b, a, ">=")[0] == "reversed"
    assert compare(a, close, ">")[0].startswith("not shown")
    assert compare(close, a, ">=")[0].startswith("holds")
    verdict, diff, two_se = compare(a, b, ">")
    assert diff == 10.0 and math.isclose(two_se, 2 * math.sqrt(2 / 3))
    assert compare({"mean": 1.0, "std": float("nan"), "n": 1}, b, ">")[0].startswith("not tested")


def test_summary_and_claims_from_cells() -> None:
    cells = [{"method": m, "seed": s, "tasks": {"landcover": {"value": v / 100}, "change": {"value": w / 100}}}
             for m, vals in {"seco": [(80, 50), (82, 52), (81, 51)], "moco-tp": [(70, 40), (71, 41), (72, 39)],
                             "random": [(50, 45), (51, 46), (49, 44)]}.items()
             for s, (v, w) in enumerate(vals)]
    table = summarize(cells)
    assert table["landcover"]["seco"]["mean"] == pytest.approx(81.0)
    assert table["landcover"]["seco"]["std"] == pytest.approx(1.0)
    rows = {(r["claim"], r["a"]): r["verdict"] for r in verdicts(table)}
    assert rows[("SSL > random init on land cover", "seco")] == "holds"
    assert rows[("SSL > random init on land cover", "moco-tp")] == "holds"
    assert rows[("SeCo >= MoCo-v2+TP on land cover", "seco")] == "holds"
    assert rows[("SeCo > MoCo-v2+TP on change detection", "seco")] == "holds"


def test_season_consistency() -> None:
    import numpy as np

    from seco.experiment.subspaces import season_consistency

    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 16))
    assert season_consistency(z, z, seed=0) > 0.9  # the same embedding at both dates
    assert abs(season_consistency(z, rng.normal(size=(200, 16)), seed=0)) < 0.1  # unrelated dates
    assert season_consistency(z, z + 0.5 * rng.normal(size=z.shape), seed=0) > 0.5
