"""``seco eval eurosat|bigearthnet --bands s1|s2|s1+s2`` on the fake S1 trees of tests/data/fakes_s1.py (official
layouts): random init and an exported tiny seco-s12 backbone; a missing sensor fed as zeros after normalisation;
one-line refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from seco.bands import L1C, L2A
from seco.errors import BandError
from seco.eval.backbone import InputTransform
from seco.eval.features import image_stats
from seco.eval.sensor_input import plan_inputs
from tests.data import fakes_s1
from tests.eval._helpers import fakes, make_export

FAST = ("--cs", "0.1,1", "--no-progress")
S12 = (*L2A, "VV", "VH")


def _m(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def eurosat_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """EuroSAT MS and EuroSAT-SAR twins, 5 images per class."""
    tmp = tmp_path_factory.mktemp("eurosat_pair")
    ms = fakes.write_eurosat_ms(tmp / "ms", per_class=5, seed=1)
    sar = fakes_s1.write_eurosat_sar(tmp / "sar", per_class=5, seed=1, nested=True)
    return ms, sar.parents[1]  # the Copernicus-Bench root holding eurosat_s1/


@pytest.fixture(scope="module")
def s12_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny seco-s12 backbone (S2 + VV, VH: 14 channels) trained 2 steps on a simulated S1 + S2 store, exported."""
    from seco.cli import main
    from seco.synth import make_store
    from tests.conftest import tiny_pretrain_args

    tmp = tmp_path_factory.mktemp("s12")
    make_store(tmp / "s12.zarr", num_locations=8, num_dates=5, patch_size=48, seed=3, progress=False, s1=True)
    args = tiny_pretrain_args(tmp / "s12.zarr", tmp / "run", "--method", "seco-s12", "--bands", "s1+s2",
                              "--max-steps", "2")
    assert main(args) == 0
    assert main(["export", str(tmp / "run" / "last.ckpt"), "--out", str(tmp / "w")]) == 0
    return tmp / "w.safetensors"


def _eurosat(run_cli, pair: tuple[Path, Path], out: Path, weights: str | Path, *extra: str) -> tuple[int, str, str]:
    ms, sar = pair
    return run_cli("eval", "eurosat", "--root", ms, "--s1-root", sar, "--weights", weights, "--out", out,
                   "--cache-dir", out.parent / "cache", *FAST, *extra)


@pytest.mark.parametrize(("bands", "expect"), [("s1", ["VV", "VH"]), ("s2", list(L1C)), ("s1+s2", [*L1C, "VV", "VH"])])
def test_random_init_probe_on_each_sensor(run_cli, eurosat_pair, tmp_path: Path, bands: str, expect: list[str]) -> None:
    code, out_text, err = _eurosat(run_cli, eurosat_pair, tmp_path / "run", "random", "--bands", bands)
    assert code == 0, err
    m = _m(tmp_path / "run")
    assert m["bands"] == expect and m["splits"] == {"train": 30, "val": 10, "test": 10, "test_is_val": False}
    assert m["fractions"]["100"]["accuracy"] >= 0.8  # the fakes carry a strong class signal in both sensors
    if "s1" in bands:
        assert m["inputs"]["zeroed"] == [] and m["transform"]["fill_nan"] is True
        assert m["normalization"].startswith("train split statistics")
        norm = m["transform"]["normalization"]
        assert norm["units"][-2:] == ["dB", "dB"] and norm["mean"][-1] < -10 < norm["mean"][-2]  # VH ~ -18, VV ~ -8
        assert "- sensors read:" in (tmp_path / "run" / "report.md").read_text()
    else:
        assert "inputs" not in m  # an S2 run reports as before


def test_sensors_see_the_same_patches(eurosat_pair, tmp_path: Path) -> None:
    from seco.eval.config import ClassifyConfig
    from seco.eval.sensor_input import open_multisensor

    ms, sar = eurosat_pair
    cfg = ClassifyConfig(task="eurosat", root=str(ms), s1_root=str(sar), weights="random", out=str(tmp_path))
    for split in ("train", "test"):
        a, b = (open_multisensor(cfg, bands, split) for bands in (("VV", "VH"), ("B02", "B03")))
        assert a.names == b.names and np.array_equal(a.labels, b.labels)


def test_s12_backbone_on_each_sensor(run_cli, eurosat_pair, s12_export: Path, tmp_path: Path) -> None:
    runs = {}
    for bands in ("s1", "s2", "s1+s2"):
        out = tmp_path / bands.replace("+", "_")
        code, _, err = _eurosat(run_cli, eurosat_pair, out, s12_export, "--bands", bands)
        assert code == 0, err
        runs[bands] = _m(out)
    for m in runs.values():
        assert m["bands"] == list(S12) and m["weights_kind"] == "export" and m["backbone_unchanged"]
        assert m["normalization"].startswith("weights (export)")
    s1, s2, both = runs["s1"], runs["s2"], runs["s1+s2"]
    assert s1["inputs"]["data_bands"] == ["VV", "VH"] and s1["inputs"]["zeroed"] == list(L2A)
    assert s1["transform"]["positions"] == [12, 13] and s1["transform"]["channels"] == 14
    assert s1["transform"]["normalization"]["bands"] == ["VV", "VH"]  # the export's dB statistics of VV / VH
    assert s2["inputs"]["data_bands"] == list(L2A) and s2["inputs"]["zeroed"] == ["VV", "VH"]  # B10 not read
    assert both["inputs"]["zeroed"] == [] and "positions" not in both["transform"]
    report = (tmp_path / "s1" / "report.md").read_text()
    assert "fed as zeros after normalisation" in report and "seco-s12" in report
    assert "fed as zeros" not in (tmp_path / "s1_s2" / "report.md").read_text()


def test_zero_fill_is_the_missing_sensor_at_its_mean(s12_export: Path) -> None:
    """The transform of a one-sensor input equals the full normalisation of an input whose other sensor sits at
    its mean: what seco-s12's single-sensor views show."""
    from seco.eval.backbone import load_weights

    spec = load_weights(str(s12_export))
    norm = spec.normalization
    assert norm is not None
    x = torch.randn(2, 2, 8, 8) * 3 - 15  # VV, VH in dB
    x[0, 1, 0, 0] = float("nan")  # S1 no data
    t = InputTransform(norm.select(["VV", "VH"]), fill_nan=True, positions=(12, 13), channels=14)
    full = torch.tensor(norm.mean).view(1, 14, 1, 1).repeat(2, 1, 8, 8)
    full[:, 12:] = x
    full[0, 13, 0, 0] = norm.mean[13]
    y = t.apply(x)
    assert y.shape == (2, 14, 8, 8) and torch.allclose(y, norm.apply(full), atol=1e-5)
    assert torch.all(y[:, :12] == 0) and y[0, 13, 0, 0] == 0


def test_finetune_on_radar_alone(run_cli, eurosat_pair, s12_export: Path, tmp_path: Path) -> None:
    code, _, err = _eurosat(run_cli, eurosat_pair, tmp_path / "ft", s12_export, "--bands", "s1", "--protocol",
                            "finetune", "--epochs", "1", "--train-batch-size", "16")
    assert code == 0, err
    m = _m(tmp_path / "ft")
    assert m["protocol"] == "finetune" and m["inputs"]["zeroed"] == list(L2A) and m["backbone_unchanged"]


def test_data_normalization_per_sensor(run_cli, eurosat_pair, s12_export: Path, tmp_path: Path) -> None:
    code, _, err = _eurosat(run_cli, eurosat_pair, tmp_path / "d", s12_export, "--normalization", "data")
    assert code == 0, err
    m = _m(tmp_path / "d")
    norm = m["transform"]["normalization"]
    assert m["normalization"].startswith("train split statistics") and "S1 dB" in m["normalization"]
    assert norm["bands"] == list(S12) and norm["mean"][0] < 1 and norm["mean"][-1] < -10


def test_bigearthnet_s1_with_the_s12_backbone(run_cli, s12_export: Path, tmp_path: Path) -> None:
    root = tmp_path / "ben"
    fakes_s1.write_bigearthnet_s1(root, num_patches=48, seed=0)
    for bands in ("s1", "s1+s2"):
        out = tmp_path / bands.replace("+", "_")
        code, _, err = run_cli("eval", "bigearthnet", "--root", root, "--s1-root", root, "--weights", s12_export,
                               "--bands", bands, "--size", "48", "--out", out, "--no-cache", *FAST)
        assert code == 0, err
        m = _m(out)
        assert m["inputs"]["sensors"] == (["s1"] if bands == "s1" else ["s2", "s1"])
        assert 0 <= m["headline"]["value"] <= 1 and m["splits"]["test"] > 0


def test_reben_root_holds_both_sensors(run_cli, tmp_path: Path) -> None:
    root = fakes_s1.write_reben(tmp_path / "reben")
    out = tmp_path / "run"
    code, _, err = run_cli("eval", "bigearthnet", "--root", root, "--weights", "random", "--bands", "s1+s2",
                           "--size", "32", "--out", out, "--no-cache", *FAST)
    assert code == 0, err
    m = _m(out)
    assert m["bands"] == [*L2A, "VV", "VH"] and m["splits"]["train"] == 3  # the official split column
    code, _, err = run_cli("eval", "bigearthnet", "--root", root, "--weights", "random", "--bands", "s1",
                           "--exclude", root / "x.txt", "--out", tmp_path / "r2", "--no-cache", *FAST)
    assert code == 2 and "--exclude" in err and "reBEN" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("bands", "s1", "needle"), [
    ("s1", True, "no channels for the Sentinel-1 input VV, VH"),
    ("s1+s2", True, "no channels for the Sentinel-1 input"),
    ("VH", True, "no channels for the Sentinel-1 input VH"),
    ("s1", False, "no channels for the Sentinel-1 input"),
])
def test_optical_backbone_refuses_radar_in_one_line(run_cli, eurosat_pair, tmp_path: Path, bands: str, s1: bool,
                                                    needle: str) -> None:
    w = make_export(tmp_path / "opt", L2A)
    ms, sar = eurosat_pair
    code, _, err = run_cli("eval", "eurosat", "--root", ms, *(("--s1-root", sar) if s1 else ()), "--weights", w,
                           "--bands", bands, "--out", tmp_path / "run", "--no-cache", *FAST)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_s12_backbone_without_s1_data_says_how(run_cli, eurosat_pair, s12_export: Path, tmp_path: Path) -> None:
    code, _, err = run_cli("eval", "eurosat", "--root", eurosat_pair[0], "--weights", s12_export,
                           "--out", tmp_path / "run", "--no-cache", *FAST)
    assert code == 2 and "--s1-root" in err and "--bands s2" in err and len(err.strip().splitlines()) == 1


def test_plan_inputs() -> None:
    p = plan_inputs(S12, "s2", (*L1C, "VV", "VH"), "w")
    assert p.data_bands == L2A and p.zeroed == ("VV", "VH") and p.positions == tuple(range(12))
    p = plan_inputs(S12, "VH,VV", (*L1C, "VV", "VH"), "w")
    assert p.data_bands == ("VV", "VH") and p.positions == (12, 13)
    assert plan_inputs(None, None, ("B02", "VV", "VH"), "random").data_bands == ("B02", "VV", "VH")
    assert plan_inputs(L2A, None, L1C, "w").data_bands == L2A  # optical: as before
    with pytest.raises(BandError, match="have no channel for Sentinel-1 band"):
        plan_inputs((*L2A, "VV"), "VV,VH", (*L2A, "VV", "VH"), "w")
    with pytest.raises(BandError, match="take only Sentinel-1 bands"):
        plan_inputs(("VV", "VH"), "s2", (*L2A, "VV", "VH"), "w")


def test_image_stats_leave_out_no_data() -> None:
    x = torch.tensor([[[[1.0, 3.0]], [[-10.0, float("nan")]]]])  # (1, 2, 1, 2)
    n = image_stats([x], ("B02", "VV"))
    assert n.mean == (2.0, -10.0) and n.std == (1.0, 1.0)


def test_no_dataset_is_one_line(run_cli, tmp_path: Path) -> None:
    code, _, err = run_cli("eval", "eurosat", "--weights", "random", "--out", tmp_path / "run", *FAST)
    assert code == 2 and "--root" in err and "--s1-root" in err and len(err.strip().splitlines()) == 1


def test_export_without_normalization_uses_its_statistics_per_sensor(s12_export: Path, tmp_path: Path) -> None:
    """A sidecar with only the per-sensor ``statistics`` (s2 reflectance, s1 dB) still normalises both sensors."""
    import shutil

    from seco.eval.backbone import load_weights

    for suffix in (".safetensors", ".pth"):
        shutil.copy(s12_export.with_suffix(suffix), tmp_path / f"w{suffix}")
    meta = json.loads(s12_export.with_suffix(".json").read_text())
    full = load_weights(str(s12_export)).normalization
    meta["normalization"] = None
    (tmp_path / "w.json").write_text(json.dumps(meta))
    norm = load_weights(str(tmp_path / "w.safetensors")).normalization
    assert norm is not None and full is not None
    assert norm.bands == S12 and norm.units[-1] == "dB"
    assert np.allclose(norm.mean, full.mean) and np.allclose(norm.std, full.std)


def test_s1_no_data_is_fed_as_the_mean(run_cli, tmp_path: Path) -> None:
    """NaN (S1 no data) in a BigEarthNet-S1 patch: left out of the statistics, 0 after normalisation, so the
    probe runs on finite features."""
    root = tmp_path / "ben"
    s1 = fakes_s1.write_bigearthnet_s1(root, num_patches=48, seed=0)
    patch = sorted(p for p in s1.iterdir() if p.is_dir())[0]
    for pol in ("VV", "VH"):
        path = patch / f"{patch.name}_{pol}.tif"
        plane = fakes_s1.s1_plane(pol, 1, np.random.default_rng(0), 120)
        plane[:60] = np.nan  # half the patch outside the swath
        fakes_s1.write_tif(path, plane[None])
    out = tmp_path / "run"
    code, _, err = run_cli("eval", "bigearthnet", "--s1-root", s1, "--weights", "random", "--bands", "s1",
                           "--size", "48", "--out", out, "--cache-dir", tmp_path / "cache", *FAST)
    assert code == 0, err
    m = _m(out)
    norm = m["transform"]["normalization"]
    assert np.isfinite(norm["mean"]).all() and -20 < norm["mean"][0] < -5  # VV ~ -8 dB: NaN left out
    assert np.isfinite(m["headline"]["value"])
    feats = [np.load(p)["features"] for p in (tmp_path / "cache" / "features").glob("*.npz")]
    assert feats and all(np.isfinite(f).all() for f in feats)
