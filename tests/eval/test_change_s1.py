"""Change detection with radar: the OSCD pipeline on simulated S1, S2 and S1+S2 pairs (random init and a tiny
seco-s12 export, its single-sensor runs zero-filling the other sensor), and refusals before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seco.backbones import build_backbone
from seco.data.normalize import Normalization
from seco.errors import BandError
from seco.eval.backbone import InputTransform
from seco.eval.change import ZeroFill, run_change_detection
from seco.eval.config import ChangeConfig
from seco.models.export import export_backbone
from seco.synth.changes import make_change_dataset

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
MODEL_BANDS = ("B02", "B03", "B04", "B08", "VV", "VH")


@pytest.fixture(scope="module")
def radar_cd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_change_dataset(tmp_path_factory.mktemp("cd") / "oscd", num_cities=3, size=64, seed=5, bands="10m",
                               s1=True, flood_fraction=0.04, cloud_fraction=0.5)


@pytest.fixture(scope="module")
def s12_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny seco-s12-style export: S2 10 m bands (reflectance) then VV, VH (dB), both sensors' statistics."""
    torch.manual_seed(0)
    net = build_backbone("resnet18", len(MODEL_BANDS), num_classes=0)
    norm = Normalization(MODEL_BANDS, (0.08, 0.09, 0.1, 0.25, -11.0, -18.0), (0.03, 0.03, 0.04, 0.08, 4.0, 4.5))
    meta = {"bands": list(MODEL_BANDS), "normalization": norm.to_dict(), "input_size": 64, "method": "seco-s12",
            "training_steps": 0}
    paths = export_backbone(net.state_dict(), tmp_path_factory.mktemp("w") / "s12", meta)
    return next(p for p in paths if p.suffix == ".safetensors")


def _run(root: Path, out: Path, weights: str, bands: str | None, **kw: object) -> dict:
    cfg = ChangeConfig(root=str(root), weights=weights, out=str(out), bands=bands, patch=32, epochs=1, batch_size=4,
                       progress=False, device="cpu")
    return run_change_detection(cfg, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("bands", "expect"), [("s1", ("VV", "VH")), ("10m", MODEL_BANDS[:4]),
                                               ("10m+s1", MODEL_BANDS)])
def test_random_init_on_s1_s2_and_s1_s2_pairs(radar_cd: Path, tmp_path: Path, bands: str,
                                              expect: tuple[str, ...]) -> None:
    m = _run(radar_cd, tmp_path / "run", "random", bands)
    assert tuple(m["bands"]) == expect and "model_bands" not in m
    norm = m["transform"]["normalization"]
    assert norm["bands"] == list(expect)
    if "VV" in expect:  # radar channels normalised with their own statistics, in dB
        vv = norm["mean"][expect.index("VV")]
        assert -25 < vv < -5 and norm["units"][expect.index("VV")] == "dB"
    g = m["test"]["all_pixels"]
    assert 0 <= g["f1"] <= 1 and (tmp_path / "run" / "report.md").is_file()
    assert (tmp_path / "run" / "change_maps" / "synth02.png").is_file()


def test_seco_s12_export_on_one_sensor_zero_fills_the_other(radar_cd: Path, s12_export: Path, tmp_path: Path) -> None:
    both = _run(radar_cd, tmp_path / "both", str(s12_export), None)
    assert tuple(both["bands"]) == MODEL_BANDS and "model_bands" not in both
    assert both["transform"]["normalization"]["mean"][4] == -11.0  # the export's dB statistics
    radar = _run(radar_cd, tmp_path / "s1", str(s12_export), "s1")
    assert radar["bands"] == ["VV", "VH"] and radar["model_bands"] == list(MODEL_BANDS)
    assert radar["transform"]["zero_filled"] == list(MODEL_BANDS[:4])
    assert radar["transform"]["normalization"]["mean"] == [-11.0, -18.0]
    assert "zero-filled" in radar["normalization"]
    optical = _run(radar_cd, tmp_path / "s2", str(s12_export), "10m", normalization="data")
    assert optical["transform"]["zero_filled"] == ["VV", "VH"] and optical["bands"] == list(MODEL_BANDS[:4])


def test_zero_fill_places_the_read_channels_and_zeros_the_rest() -> None:
    inner = InputTransform(Normalization(("VV", "VH"), (-10.0, -20.0), (2.0, 4.0)))
    z = ZeroFill(inner, ("VV", "VH"), MODEL_BANDS)
    x = torch.stack([torch.full((3, 3), -12.0), torch.full((3, 3), -16.0)])[None]  # (1, 2, 3, 3) dB
    y = z.apply(x)
    assert y.shape == (1, 6, 3, 3)
    assert torch.equal(y[0, :4], torch.zeros(4, 3, 3))
    assert torch.allclose(y[0, 4:, 0, 0], torch.tensor([-1.0, 1.0]))


def test_radar_bands_without_s1_pairs_are_refused_before_work(tmp_path: Path, s12_export: Path) -> None:
    plain = make_change_dataset(tmp_path / "plain", num_cities=2, size=64, seed=1, bands="10m")
    with pytest.raises(BandError, match="VV"):
        _run(plain, tmp_path / "a", "random", "s1")
    with pytest.raises(BandError, match="VV"):
        _run(plain, tmp_path / "b", str(s12_export), None)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
