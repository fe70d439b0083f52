"""EuroSAT loader: real samples (../shared/data) and seeded fakes in the official layouts."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from PIL import Image

from seco.bands import L1C
from seco.data.eurosat import CLASSES, MS_FILE_BANDS, EuroSAT
from seco.errors import BandError, ConfigError, DatasetError

try:  # tests/ as a package, or pytest's rootless import mode
    from tests.data import fakes
except ImportError:  # pragma: no cover
    import fakes  # type: ignore[no-redef]

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
needs_real = pytest.mark.skipif(
    not (SHARED / "eurosat_ms").is_dir() or not (SHARED / "eurosat_rgb").is_dir(),
    reason=f"real EuroSAT samples not found at {SHARED} (a clone without ../shared/data)",
)


@pytest.fixture(scope="module")
def fake_ms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fakes.write_eurosat_ms(tmp_path_factory.mktemp("eurosat_ms"), per_class=5, seed=1)


@pytest.fixture(scope="module")
def fake_rgb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fakes.write_eurosat_rgb(tmp_path_factory.mktemp("eurosat_rgb"), per_class=3, seed=2)


# ---- real samples -----------------------------------------------------------------------------


@needs_real
def test_real_ms_band_selection_by_name_matches_direct_read() -> None:
    ds = EuroSAT(SHARED / "eurosat_ms")
    assert ds.kind == "ms" and len(ds) == 270
    assert ds.bands == L1C  # 'all' = 13 bands, canonical order (B8A after B08)
    i = ds.names.index("River_112")
    sample = ds[i]
    assert sample["image"].shape == (13, 64, 64) and sample["image"].dtype == torch.float32
    assert int(sample["label"]) == CLASSES.index("River") and sample["name"] == "River_112"
    with rasterio.open(SHARED / "eurosat_ms" / "River" / "River_112.tif") as src:
        direct = src.read().astype(np.float32) / 10000  # (13, 64, 64) in file order, B8A last
    for c, band in enumerate(ds.bands):
        np.testing.assert_array_equal(sample["image"][c].numpy(), direct[MS_FILE_BANDS.index(band)])
    np.testing.assert_array_equal(
        sample["image"][L1C.index("B8A")].numpy(), direct[12]
    )  # 13th plane in the file
    np.testing.assert_array_equal(sample["image"][L1C.index("B09")].numpy(), direct[8])

    picked = EuroSAT(SHARED / "eurosat_ms", bands=["b8a", "B2", "B10"])
    assert picked.bands == ("B8A", "B02", "B10")
    img = picked[picked.names.index("River_112")]["image"].numpy()
    np.testing.assert_array_equal(img, direct[[12, 1, 9]])


@needs_real
def test_real_ms_labels_follow_folders_and_split_is_stratified() -> None:
    ds = EuroSAT(SHARED / "eurosat_ms")
    on_disk = {c: len(list((SHARED / "eurosat_ms" / c).glob("*.tif"))) for c in CLASSES}
    assert Counter(CLASSES[k] for k in ds.labels) == Counter(on_disk)
    parts = {s: EuroSAT(SHARED / "eurosat_ms", split=s, seed=3) for s in ("train", "val", "test")}
    names = [n for p in parts.values() for n in p.names]
    assert len(names) == len(set(names)) == len(ds)
    for s, f in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
        per_class = Counter(CLASSES[k] for k in parts[s].labels)
        for c in CLASSES:
            assert abs(per_class[c] - f * on_disk[c]) < 1.0, (s, c)
    again = EuroSAT(SHARED / "eurosat_ms", split="val", seed=3)
    assert again.names == parts["val"].names


@needs_real
def test_real_rgb_channels_are_b04_b03_b02_over_255() -> None:
    ds = EuroSAT(SHARED / "eurosat_rgb")
    assert ds.kind == "rgb" and len(ds) == 500 and ds.bands == ("B04", "B03", "B02")
    assert np.bincount(ds.labels).tolist() == [50] * 10
    i = ds.names.index("River_107")
    img = ds[i]["image"]
    pixels = np.asarray(Image.open(SHARED / "eurosat_rgb" / "River" / "River_107.jpg")).astype(np.float32)
    np.testing.assert_allclose(img.numpy(), pixels.transpose(2, 0, 1) / 255.0, atol=1e-7)
    blue = EuroSAT(SHARED / "eurosat_rgb", bands="B02")[i]["image"]
    np.testing.assert_allclose(blue[0].numpy(), pixels[..., 2] / 255.0, atol=1e-7)
    with pytest.raises(BandError, match="B08"):
        EuroSAT(SHARED / "eurosat_rgb", bands="B08")


# ---- fakes ------------------------------------------------------------------------------------


def test_fake_ms_band_codes_in_canonical_order(fake_ms: Path) -> None:
    ds = EuroSAT(fake_ms)
    sample = ds[0]
    codes = [int(np.median(fakes.band_code(sample["image"][c].numpy()))) for c in range(13)]
    assert codes == list(range(13))  # canonical L1C positions, B8A = 8 although it is plane 13 in the file
    only = EuroSAT(fake_ms, bands="B8A")[0]["image"]
    assert only.shape == (1, 64, 64) and np.all(fakes.band_code(only.numpy()) == L1C.index("B8A"))


def test_fake_rgb_channel_order(fake_rgb: Path) -> None:
    ds = EuroSAT(fake_rgb)
    means = ds[0]["image"].mean(dim=(1, 2)) * 255  # red ~40, green ~120, blue ~200 in the fake
    assert abs(means[0] - 42) < 4 and abs(means[1] - 122) < 4 and abs(means[2] - 202) < 4


def test_nested_archive_root_is_found(tmp_path: Path) -> None:
    fakes.write_eurosat_rgb(tmp_path / "2750", per_class=1)
    ds = EuroSAT(tmp_path)
    assert ds.class_root == tmp_path / "2750" and len(ds) == 10


def test_split_file_of_jpg_names_serves_ms(fake_ms: Path, tmp_path: Path) -> None:
    listed = ["Forest_2.jpg", "SeaLake_5.jpg", "AnnualCrop_1.jpg"]  # torchgeo/SeCo lists name .jpg files
    f = fakes.write_name_list(tmp_path / "eurosat-train.txt", listed)
    ds = EuroSAT(fake_ms, split="train", split_file=f)
    assert ds.names == ["Forest_2", "SeaLake_5", "AnnualCrop_1"]
    assert [CLASSES[k] for k in ds.labels] == ["Forest", "SeaLake", "AnnualCrop"]
    assert ds.files[1] == fake_ms / "SeaLake" / "SeaLake_5.tif"
    bad = fakes.write_name_list(tmp_path / "bad.txt", ["Forest_2.jpg", "Forest_999.jpg"])
    with pytest.raises(DatasetError, match="Forest_999"):
        EuroSAT(fake_ms, split_file=bad)


def test_seeded_split_partitions_fake(fake_ms: Path) -> None:
    parts = [EuroSAT(fake_ms, split=s, seed=0).names for s in ("train", "val", "test")]
    assert [len(p) for p in parts] == [30, 10, 10]  # 5 per class -> 3 / 1 / 1 per class
    assert len(set(parts[0]) | set(parts[1]) | set(parts[2])) == 50
    assert EuroSAT(fake_ms, split="train", seed=1).names != parts[0]


# ---- errors -----------------------------------------------------------------------------------


def test_wrong_root_names_root_and_layout(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"not a folder.*<Class>/<Class>_<n>"):
        EuroSAT(tmp_path / "missing")
    with pytest.raises(DatasetError, match=str(tmp_path)):
        EuroSAT(tmp_path)


def test_bad_options(fake_ms: Path) -> None:
    with pytest.raises(BandError, match="B13"):
        EuroSAT(fake_ms, bands="B13")
    with pytest.raises(ConfigError, match="unknown split"):
        EuroSAT(fake_ms, split="training")
    with pytest.raises(ConfigError, match="fractions"):
        EuroSAT(fake_ms, split="train", fractions=(0.9, 0.2, 0.1))


def test_layout_errors(tmp_path: Path) -> None:
    root = fakes.write_eurosat_ms(tmp_path / "a", per_class=1)
    shutil.rmtree(root / "Pasture")
    with pytest.raises(DatasetError, match="Pasture"):
        EuroSAT(root)

    root = fakes.write_eurosat_ms(tmp_path / "b", per_class=1)
    shutil.copy(root / "River" / "River_1.tif", root / "Forest" / "River_1.tif")
    with pytest.raises(DatasetError, match="label cannot be assigned"):
        EuroSAT(root)

    root = fakes.write_eurosat_ms(tmp_path / "c", per_class=1)
    (root / "Clouds").mkdir()
    with pytest.raises(DatasetError, match="unknown class folder.*Clouds"):
        EuroSAT(root)

    root = fakes.write_eurosat_ms(tmp_path / "d", per_class=1)
    fakes.write_eurosat_rgb(root, per_class=1)
    with pytest.raises(DatasetError, match="mixes"):
        EuroSAT(root)

    for c in CLASSES:
        (tmp_path / "e" / c).mkdir(parents=True)
    with pytest.raises(DatasetError, match="no .jpg or .tif images"):
        EuroSAT(tmp_path / "e")


def test_unexpected_shape_and_corrupt_file(tmp_path: Path) -> None:
    root = fakes.write_eurosat_ms(tmp_path, per_class=1)
    with rasterio.open(root / "Forest" / "Forest_1.tif") as src:
        data, profile = src.read(), src.profile
    profile.update(count=12)
    with rasterio.open(root / "Forest" / "Forest_1.tif", "w", **profile) as dst:
        dst.write(data[:12])  # a 12-band file: not the 13-band release
    ds = EuroSAT(root)
    with pytest.raises(DatasetError, match=r"Forest_1.tif has shape \(12, 64, 64\)"):
        ds[ds.names.index("Forest_1")]
    (root / "River" / "River_1.tif").write_bytes(b"not a tiff")
    with pytest.raises(DatasetError, match="River_1.tif"):
        ds[ds.names.index("River_1")]
