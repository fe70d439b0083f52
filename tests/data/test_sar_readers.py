"""Sentinel-1 benchmark readers on seeded fakes in the official layouts: BigEarthNet-S1 v1.0, reBEN, EuroSAT-SAR."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from seco.bands import L2A
from seco.data.bigearthnet import BigEarthNet
from seco.data.bigearthnet_s1 import BigEarthNetMM
from seco.data.eurosat import EuroSAT
from seco.data.eurosat_sar import EuroSATSAR
from seco.data.reben import BigEarthNetV2
from seco.errors import BandError, DatasetError

try:
    from tests.data import fakes, fakes_s1
except ImportError:  # pragma: no cover
    import fakes  # type: ignore[no-redef]
    import fakes_s1  # type: ignore[no-redef]


@pytest.fixture(scope="module")
def ben(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ben_mm")
    fakes_s1.write_bigearthnet_s1(root, num_patches=8)
    return root


# ---- BigEarthNet-S1 v1.0 ----------------------------------------------------------------------


def test_ben_s1_only_reads_vv_vh_in_db(ben: Path) -> None:
    ds = BigEarthNetMM(ben, bands="s1")
    assert ds.bands == ("VV", "VH") and ds.units == ("dB", "dB")
    x = ds[0]["image"]
    assert x.shape == (2, 120, 120) and x.dtype == torch.float32
    assert [fakes_s1.pol_of(p.numpy()) for p in x] == ["VV", "VH"]
    assert float(x.max()) < 0  # dB as stored, not converted


def test_ben_pairs_s1_with_its_s2_patch_through_the_json(ben: Path) -> None:
    mm = BigEarthNetMM(ben, bands="s1+s2")
    s2 = BigEarthNet(ben, bands="all", drop_unlabeled=True)
    assert mm.bands == (*L2A, "VV", "VH")
    assert mm.sensor_bands.channels("s1") == [12, 13]
    assert mm.units[:12] == ("reflectance",) * 12 and mm.units[12:] == ("dB", "dB")
    assert mm.names == s2.names  # S2 names, sorted; S1 names were written in reverse order
    for i in range(len(mm)):
        torch.testing.assert_close(mm[i]["image"][:12], s2[i]["image"])
        np.testing.assert_array_equal(mm.targets[i], s2.targets[i])
        # S1 patch written for S2 patch j carries patch j's class signal
        assert mm[i]["s1_name"] == fakes_s1.s1_patch_name(len(mm) - 1 - i)


def test_ben_s2_only_through_the_mm_reader_equals_the_s2_reader(ben: Path) -> None:
    mm = BigEarthNetMM(ben, bands="rgb")
    s2 = BigEarthNet(ben, bands="rgb")
    torch.testing.assert_close(mm[3]["image"], s2[3]["image"])


def test_ben_split_file_uses_s2_names(ben: Path, tmp_path: Path) -> None:
    names = [fakes.bigearthnet_patch_name(i) for i in (5, 2)]
    lst = tmp_path / "train.csv"
    lst.write_text("".join(f"{n},{fakes_s1.s1_patch_name(0)}\n" for n in names))
    ds = BigEarthNetMM(ben, bands="s1", split_file=lst)
    assert ds.names == names


def test_ben_linear_copy_is_refused_before_any_work(tmp_path: Path) -> None:
    fakes_s1.write_bigearthnet_s1(tmp_path, num_patches=3, linear=True)
    with pytest.raises(DatasetError, match="linear power"):
        BigEarthNetMM(tmp_path, bands="s1")


def test_ben_missing_pairing_field_is_named(ben: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(ben / "BigEarthNet-S1-v1.0", tmp_path / "BigEarthNet-S1-v1.0")
    js = next((tmp_path / "BigEarthNet-S1-v1.0").glob("*/*_labels_metadata.json"))
    js.write_text('{"labels": ["Pastures"]}')
    with pytest.raises(DatasetError, match="corresponding_s2_patch"):
        BigEarthNetMM(tmp_path, bands="s1")


def test_ben_s2_bands_without_the_s2_archive_is_an_error(ben: Path) -> None:
    with pytest.raises(DatasetError, match="BigEarthNet-v1.0"):
        BigEarthNetMM(ben / "BigEarthNet-S1-v1.0", bands="s1+s2")
    assert len(BigEarthNetMM(ben / "BigEarthNet-S1-v1.0", bands="VH")) == 8


def test_unknown_band_is_a_band_error(ben: Path) -> None:
    with pytest.raises(BandError):
        BigEarthNetMM(ben, bands="s1+HH")


# ---- reBEN -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reben(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fakes_s1.write_reben(tmp_path_factory.mktemp("reben"))


def test_reben_splits_and_labels(reben: Path) -> None:
    val = BigEarthNetV2(reben, bands="s1", split="val")
    assert val.names == [fakes_s1.reben_names(i)[0] for i in (2, 5)]
    assert val.s1_names == [fakes_s1.reben_names(i)[1] for i in (2, 5)]
    assert [set(np.flatnonzero(t)) for t in val.targets] == [
        {val.classes.index(n) for n in fakes_s1.REBEN_LABELS[i]} for i in (2, 5)
    ]
    assert len(BigEarthNetV2(reben, bands="s1", split="train")) == 3
    assert len(BigEarthNetV2(reben, bands="s1", split="train", drop_flagged=True)) == 2


def test_reben_s1_s2_channels(reben: Path) -> None:
    ds = BigEarthNetV2(reben, bands="s2+s1")
    x = ds[1]["image"]
    assert x.shape == (14, 120, 120)
    assert [fakes_s1.pol_of(p.numpy()) for p in x[12:]] == ["VV", "VH"]
    codes = [int(np.median(fakes.band_code(p.numpy()))) for p in x[:12]]
    assert codes == [fakes.L1C.index(b) for b in L2A]


def test_reben_s2_at_120_px_is_read_too(tmp_path: Path) -> None:
    fakes_s1.write_reben(tmp_path, s2_native=False)
    assert BigEarthNetV2(tmp_path, bands="s2")[0]["image"].shape == (12, 120, 120)


def test_reben_missing_metadata_is_named(tmp_path: Path) -> None:
    (tmp_path / "BigEarthNet-S1").mkdir()
    with pytest.raises(DatasetError, match="metadata.parquet"):
        BigEarthNetV2(tmp_path, bands="s1")


# ---- EuroSAT-SAR -------------------------------------------------------------------------------


@pytest.mark.parametrize("nested", [False, True])
def test_eurosat_sar_layouts(tmp_path: Path, nested: bool) -> None:
    fakes_s1.write_eurosat_sar(tmp_path, per_class=2, nested=nested)
    ds = EuroSATSAR(tmp_path, bands="s1")
    assert len(ds) == 20 and ds.bands == ("VV", "VH")
    s = ds[5]
    assert s["image"].shape == (2, 64, 64) and int(s["label"]) == 2
    assert [fakes_s1.pol_of(p.numpy()) for p in s["image"]] == ["VV", "VH"]
    assert EuroSATSAR(tmp_path, bands="VH")[5]["image"].shape == (1, 64, 64)


def test_eurosat_sar_pairs_with_the_ms_release_by_name(tmp_path: Path) -> None:
    fakes_s1.write_eurosat_sar(tmp_path / "sar", per_class=3)
    fakes.write_eurosat_ms(tmp_path / "ms", per_class=2)
    ds = EuroSATSAR(tmp_path / "sar", bands="rgb+s1", s2_root=tmp_path / "ms")
    ms = EuroSAT(tmp_path / "ms", bands="rgb")
    assert ds.names == ms.names  # only names in both
    assert ds.units == ("reflectance",) * 3 + ("dB",) * 2
    torch.testing.assert_close(ds[7]["image"][:3], ms[7]["image"])
    with pytest.raises(BandError):
        EuroSATSAR(tmp_path / "sar", bands="s1+s2")  # no s2_root


def test_eurosat_sar_split_file_of_jpg_names(tmp_path: Path) -> None:
    fakes_s1.write_eurosat_sar(tmp_path, per_class=2, nested=True)
    lst = tmp_path / "eurosat_s1" / "eurosat-val.txt"
    lst.write_text("Forest_2.jpg\nRiver_1.jpg\n")
    assert EuroSATSAR(tmp_path, split="val", split_file=lst).names == ["Forest_2", "River_1"]
