"""BigEarthNet loader: real v1.0 patches (../shared/data) and seeded fakes in the official layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.enums import Resampling

from seco.bands import L1C, L2A
from seco.data.bigearthnet import CLASSES_19, CLASSES_43, TO_19, BigEarthNet, label_names_to_target
from seco.errors import BandError, ConfigError, DatasetError

try:  # tests/ as a package, or pytest's rootless import mode
    from tests.data import fakes
except ImportError:  # pragma: no cover
    import fakes  # type: ignore[no-redef]

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
REAL = SHARED / "bigearthnet"
needs_real = pytest.mark.skipif(
    not (REAL / "BigEarthNet-v1.0").is_dir(),
    reason=f"real BigEarthNet samples not found at {REAL} (a clone without ../shared/data)",
)

#: Hand-checked 19-class targets of three real patches (Sumbul et al. 2021 nomenclature).
EXPECTED_19 = {
    "S2A_MSIL2A_20170613T101031_87_48": {
        "Arable land",
        "Land principally occupied by agriculture, with significant areas of natural vegetation",
    },
    "S2A_MSIL2A_20180510T94033_19_86": {
        "Coniferous forest",
        "Inland wetlands",
    },  # Peatbogs -> Inland wetlands
    "S2B_MSIL2A_20170924T93020_69_24": {
        "Coniferous forest",
        "Mixed forest",
        "Transitional woodland, shrub",  # from 'Transitional woodland/shrub'
        "Inland wetlands",
        "Inland waters",  # from 'Water bodies'
    },
}


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ben")
    fakes.write_bigearthnet(root, num_patches=12, seed=0, unlabeled=1)
    return root


# ---- the 43 -> 19 mapping ---------------------------------------------------------------------


def test_mapping_covers_32_of_43_classes() -> None:
    assert len(CLASSES_43) == 43 and len(CLASSES_19) == 19
    assert set(TO_19) <= set(CLASSES_43) and len(TO_19) == 32
    assert sorted(set(TO_19.values())) == list(range(19))  # every new class has a source
    unmapped = set(CLASSES_43) - set(TO_19)
    assert unmapped == {
        "Road and rail networks and associated land",
        "Port areas",
        "Airports",
        "Mineral extraction sites",
        "Dump sites",
        "Construction sites",
        "Green urban areas",
        "Sport and leisure facilities",
        "Bare rock",
        "Burnt areas",
        "Intertidal flats",
    }
    t = label_names_to_target(["Salines", "Estuaries", "Airports"], 19)
    assert [CLASSES_19[i] for i in np.flatnonzero(t)] == ["Coastal wetlands", "Marine waters"]
    with pytest.raises(DatasetError, match="Moon craters"):
        label_names_to_target(["Pastures", "Moon craters"], 19, "x.json")


@needs_real
def test_real_label_mapping() -> None:
    ds = BigEarthNet(REAL, drop_unlabeled=False)
    assert len(ds) == 14 and ds.dropped == [] and ds.targets.shape == (14, 19)
    for name, expected in EXPECTED_19.items():
        row = ds.targets[ds.names.index(name)]
        assert {CLASSES_19[i] for i in np.flatnonzero(row)} == expected
    ds43 = BigEarthNet(REAL, num_classes=43)
    for name, row in zip(ds43.names, ds43.targets, strict=True):
        labels = json.loads((REAL / "BigEarthNet-v1.0" / name / f"{name}_labels_metadata.json").read_text())[
            "labels"
        ]
        assert [CLASSES_43[i] for i in np.flatnonzero(row)] == sorted(labels, key=CLASSES_43.index)


@needs_real
def test_real_image_bands_on_one_grid() -> None:
    ds = BigEarthNet(REAL, bands=["B02", "B8A", "B09"])
    name = "S2B_MSIL2A_20170924T93020_69_24"
    sample = ds[ds.names.index(name)]
    assert sample["image"].shape == (3, 120, 120) and sample["image"].dtype == torch.float32
    assert (
        sample["label"].shape == (19,) and sample["label"].dtype == torch.float32 and sample["name"] == name
    )
    folder = REAL / "BigEarthNet-v1.0" / name
    with rasterio.open(folder / f"{name}_B02.tif") as src:
        np.testing.assert_array_equal(sample["image"][0].numpy(), src.read(1).astype(np.float32) / 10000)
    for c, band in ((1, "B8A"), (2, "B09")):  # 60 px and 20 px up to 120: GDAL's bilinear is the reference
        with rasterio.open(folder / f"{name}_{band}.tif") as src:
            ref = src.read(1, out_shape=(120, 120), resampling=Resampling.bilinear).astype(np.float32) / 10000
        np.testing.assert_allclose(sample["image"][c].numpy(), ref, atol=1.01e-4)  # GDAL rounds to whole DN
    all_bands = BigEarthNet(REAL, size=60)
    assert all_bands.bands == L2A and all_bands[0]["image"].shape == (12, 60, 60)


@needs_real
def test_real_split_is_seeded_partition() -> None:
    parts = {s: BigEarthNet(REAL, split=s, seed=5).names for s in ("train", "val", "test")}
    assert sum(len(p) for p in parts.values()) == 14
    assert len(set().union(*parts.values())) == 14
    assert BigEarthNet(REAL, split="train", seed=5).names == parts["train"]


# ---- fakes ------------------------------------------------------------------------------------


def test_fake_band_codes_and_roots(fake_root: Path) -> None:
    for root in (fake_root, fake_root / "BigEarthNet-v1.0"):  # parent or the archive folder itself
        ds = BigEarthNet(root)
        img = ds[0]["image"]
        assert img.shape == (12, 120, 120)
        codes = [int(np.median(fakes.band_code(img[c].numpy()))) for c in range(12)]
        assert codes == [L1C.index(b) for b in L2A]


def test_drop_unlabeled(fake_root: Path) -> None:
    unlabeled = fakes.bigearthnet_patch_name(11)
    ds = BigEarthNet(fake_root)
    assert len(ds) == 11 and ds.dropped == [unlabeled] and unlabeled not in ds.names
    assert ds.targets.any(axis=1).all()
    kept = BigEarthNet(fake_root, drop_unlabeled=False)
    assert len(kept) == 12 and kept[11]["label"].sum() == 0
    ds43 = BigEarthNet(fake_root, num_classes=43)
    assert len(ds43) == 12 and ds43.dropped == [] and ds43[11]["label"].shape == (43,)
    assert ds43[11]["label"].sum() == 2


def test_exclusion_lists(fake_root: Path, tmp_path: Path) -> None:
    snow = fakes.write_name_list(
        tmp_path / "patches_with_seasonal_snow.csv", [fakes.bigearthnet_patch_name(0)]
    )
    cloud = fakes.write_name_list(
        tmp_path / "patches_with_cloud_and_shadow.csv",
        [
            fakes.bigearthnet_patch_name(3),
            "S2A_MSIL2A_20990101T000000_9_9",
        ],  # last: not in this copy, ignored
    )
    ds = BigEarthNet(fake_root, exclude=[snow, cloud])
    assert ds.excluded == [fakes.bigearthnet_patch_name(0), fakes.bigearthnet_patch_name(3)]
    assert len(ds) == 9 and not set(ds.excluded) & set(ds.names)


def test_split_file_csv_and_seeded_split(fake_root: Path, tmp_path: Path) -> None:
    wanted = [fakes.bigearthnet_patch_name(i) for i in (4, 1, 7)]
    f = fakes.write_name_list(tmp_path / "bigearthnet-train.csv", wanted, style="csv")
    ds = BigEarthNet(fake_root, split="train", split_file=f)
    assert ds.names == wanted
    bad = fakes.write_name_list(
        tmp_path / "bad.csv", [*wanted, "S2A_MSIL2A_20990101T000000_9_9"], style="csv"
    )
    with pytest.raises(DatasetError, match="S2A_MSIL2A_20990101T000000_9_9"):
        BigEarthNet(fake_root, split_file=bad)
    parts = [BigEarthNet(fake_root, split=s, seed=2).names for s in ("train", "val", "test")]
    assert sum(map(len, parts)) == 11 and len(set().union(*parts)) == 11


# ---- errors -----------------------------------------------------------------------------------


def test_root_and_option_errors(tmp_path: Path, fake_root: Path) -> None:
    with pytest.raises(DatasetError, match=r"not a folder.*labels_metadata.json"):
        BigEarthNet(tmp_path / "missing")
    with pytest.raises(DatasetError, match=f"no patch folders in {tmp_path}"):
        BigEarthNet(tmp_path)
    with pytest.raises(ConfigError, match="num_classes"):
        BigEarthNet(fake_root, num_classes=10)
    with pytest.raises(BandError, match="B10"):
        BigEarthNet(fake_root, bands="B10")  # L2A: no cirrus band
    with pytest.raises(ConfigError, match="unknown split"):
        BigEarthNet(fake_root, split="validation")


def test_file_errors(tmp_path: Path) -> None:
    out = fakes.write_bigearthnet(tmp_path, num_patches=3, unlabeled=0)
    a, b, c = (fakes.bigearthnet_patch_name(i) for i in range(3))
    meta = json.loads((out / a / f"{a}_labels_metadata.json").read_text())
    meta["labels"] = ["Pastures", "Snow and ice"]
    (out / a / f"{a}_labels_metadata.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match=r"Snow and ice.*" + a):
        BigEarthNet(tmp_path)
    (out / a / f"{a}_labels_metadata.json").unlink()
    with pytest.raises(DatasetError, match=f"missing label file .*{a}_labels_metadata.json"):
        BigEarthNet(tmp_path)
    (out / a).rename(tmp_path / "aside")

    ds = BigEarthNet(tmp_path)
    (out / b / f"{b}_B11.tif").unlink()
    with pytest.raises(DatasetError, match=f"missing raster file .*{b}_B11.tif"):
        ds[ds.names.index(b)]
    with rasterio.open(out / c / f"{c}_B02.tif") as src:
        profile, data = src.profile, src.read()
    with rasterio.open(out / c / f"{c}_B05.tif", "w", **profile) as dst:
        dst.write(data)  # a 120 px file where the 20 m band (60 px) belongs
    with pytest.raises(DatasetError, match=r"B05.tif is 120 x 120 px.*60 x 60"):
        ds[ds.names.index(c)]
