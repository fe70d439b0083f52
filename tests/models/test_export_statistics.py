"""The export sidecar carries input statistics per sensor; older sidecars still load (seco.models.export)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from seco.errors import CheckpointError
from seco.models.contrastive import ContrastiveModel
from seco.models.export import PIXELS_UNKNOWN, export_backbone, load_exported, sensor_statistics

NORM = {"bands": ["B02", "B03", "B04", "B08"], "mean": [0.05, 0.08, 0.07, 0.3], "std": [0.03, 0.04, 0.05, 0.1],
        "method": "meanstd", "pixels": "clear pixels (no cloud, shadow, snow or nodata) of 12 valid dates: SCL on 100.0 %",
        "s1": {"bands": ["VV", "VH"], "units": "dB", "mean": [-11.2, -18.4], "std": [4.1, 4.6],
               "pixels": "valid S1 pixels of valid dates", "products": {"RTC": 12}}}
META = {"bands": NORM["bands"], "input_size": 64, "method": "seco", "training_steps": 3, "normalization": NORM}


def _backbone() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return ContrastiveModel("resnet18", in_chans=4, num_heads=3, emb_dim=16, queue_size=8).backbone.state_dict()


def test_per_sensor_statistics_round_trip(tmp_path: Path) -> None:
    stats = sensor_statistics(META)
    assert stats["s2"]["units"] == "reflectance" and stats["s2"]["pixels"] == NORM["pixels"]
    assert stats["s2"]["mean"] == NORM["mean"] and stats["s1"]["units"] == "dB"
    assert stats["s1"]["mean"] == NORM["s1"]["mean"]
    paths = export_backbone(_backbone(), tmp_path / "r18", {**META, "statistics": stats})
    on_disk = json.loads(paths[2].read_text())
    assert set(on_disk["statistics"]) == {"s2", "s1"}
    _, meta = load_exported(paths[0])
    assert sensor_statistics(meta) == stats


def test_older_sidecar_without_statistics_loads_and_says_pixels_unknown(tmp_path: Path) -> None:
    old_norm = {k: NORM[k] for k in ("bands", "mean", "std", "method")}
    paths = export_backbone(_backbone(), tmp_path / "old", {**META, "normalization": old_norm})
    assert "statistics" not in json.loads(paths[2].read_text())
    _, meta = load_exported(paths[2])
    stats = sensor_statistics(meta)
    assert set(stats) == {"s2"} and stats["s2"]["pixels"] == PIXELS_UNKNOWN and stats["s2"]["std"] == NORM["std"]
    assert sensor_statistics({**META, "normalization": None}) == {}


@pytest.mark.parametrize("bad, needle", [
    ({"s3": {"bands": ["VV"], "units": "dB", "mean": [1.0], "std": [1.0]}}, "'s2' or 's1'"),
    ({"s1": {"bands": ["VV", "VH"], "units": "dB", "mean": [1.0], "std": [1.0, 2.0]}}, "statistics s1 mean"),
    ({"s1": {"bands": ["VV"], "units": "dB", "mean": [1.0], "std": [0.0]}}, "must be > 0"),
    ({"s1": {"bands": ["VV"], "mean": [1.0], "std": [1.0]}}, "units"),
])
def test_bad_statistics_are_refused(tmp_path: Path, bad: dict, needle: str) -> None:
    with pytest.raises(CheckpointError, match=needle):
        export_backbone(_backbone(), tmp_path / "x", {**META, "statistics": bad})
