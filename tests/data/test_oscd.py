"""OSCD loader: real cities (../shared/data/oscd) and seeded fakes in the official layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from PIL import Image

from seco.bands import L1C
from seco.data.oscd import IMAGES_DIR, LABEL_DIRS, OSCD
from seco.errors import BandError, ConfigError, DatasetError

try:  # tests/ as a package, or pytest's rootless import mode
    from tests.data import fakes
except ImportError:  # pragma: no cover
    import fakes  # type: ignore[no-redef]

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
REAL = SHARED / "oscd"
needs_real = pytest.mark.skipif(
    not (REAL / IMAGES_DIR).is_dir(),
    reason=f"real OSCD samples not found at {REAL} (a clone without ../shared/data)",
)
#: 10 m grids of the real sample cities (size of their B02 files).
REAL_GRIDS = {"bercy": (395, 360), "paris": (408, 390), "rennes": (339, 563)}


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fakes.write_oscd(tmp_path_factory.mktemp("oscd"), seed=0)


pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # change maps


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


# ---- real samples -----------------------------------------------------------------------------


@needs_real
def test_real_change_maps_tif_and_png_agree_and_map_to_0_1() -> None:
    for city in REAL_GRIDS:
        cm = REAL / LABEL_DIRS[0] / city / "cm"
        tif = _read(cm / f"{city}-cm.tif")
        png = np.asarray(Image.open(cm / "cm.png"))
        assert set(np.unique(tif)) <= {1, 2}  # what the files hold (the README says 0 / 1)
        assert set(np.unique(png[..., :3])) <= {0, 255}
        np.testing.assert_array_equal(tif == 2, png[..., 0] == 255)
    by_tif = OSCD(REAL, split="train")
    by_png = OSCD(REAL, split="train", mask_source="png")
    assert by_tif.cities == ["bercy", "paris", "rennes"] and all(by_tif.has_mask)
    for i, city in enumerate(by_tif.cities):
        m = by_tif.load_mask(i)
        assert m.dtype == torch.uint8 and m.shape == REAL_GRIDS[city]
        assert set(torch.unique(m).tolist()) == {0, 1}
        expected = _read(REAL / LABEL_DIRS[0] / city / "cm" / f"{city}-cm.tif") == 2
        np.testing.assert_array_equal(m.numpy(), expected)
        assert torch.equal(m, by_png.load_mask(i))


@needs_real
def test_real_city_on_10m_grid() -> None:
    ds = OSCD(REAL, split="train", bands=["B02", "B05", "B01"])
    i = ds.cities.index("rennes")
    s = ds[i]
    assert s["image1"].shape == s["image2"].shape == (3, *REAL_GRIDS["rennes"])
    assert s["image1"].dtype == torch.float32 and s["mask"].shape == REAL_GRIDS["rennes"]
    assert s["city"] == "rennes" and s["dates"] == ("20150821", "20170621")
    b02 = next((REAL / IMAGES_DIR / "rennes" / "imgs_2").glob("*_B02.tif"))
    np.testing.assert_array_equal(s["image2"][0].numpy(), _read(b02).astype(np.float32) / 10000)
    b05 = _read(next((REAL / IMAGES_DIR / "rennes" / "imgs_1").glob("*_B05.tif"))).astype(np.float32) / 10000
    assert b05.shape == (170, 281)  # 20 m, resampled up to 339 x 563
    assert abs(float(s["image1"][1].mean()) - float(b05.mean())) < 0.01 * float(b05.mean())


@needs_real
def test_real_test_cities_without_labels() -> None:
    with pytest.raises(
        DatasetError, match=r"no change map for OSCD city 'montpellier'.*require_labels=False"
    ):
        OSCD(REAL, split="test")
    ds = OSCD(REAL, split="test", require_labels=False, bands="rgb")
    assert ds.cities == ["montpellier", "norcia"] and ds.has_mask == [False, False]
    s = ds[1]
    assert s["mask"] is None and s["image1"].shape == (3, 241, 385)
    assert len(OSCD(REAL, split=None, require_labels=False)) == 5


# ---- fakes ------------------------------------------------------------------------------------


def test_fake_shapes_band_codes_and_mask(fake_root: Path) -> None:
    ds = OSCD(fake_root)
    assert ds.cities == list(fakes.OSCD_TRAIN) and ds.bands == L1C
    for i in range(len(ds)):
        s = ds[i]
        h, w = fakes.oscd_city_size(i)
        assert s["image1"].shape == s["image2"].shape == (13, h, w) and s["mask"].shape == (h, w)
        codes = [int(np.median(fakes.band_code(s["image1"][c].numpy()))) for c in range(13)]
        assert codes == list(range(13))
        tif = _read(fake_root / LABEL_DIRS[0] / ds.cities[i] / "cm" / f"{ds.cities[i]}-cm.tif")
        np.testing.assert_array_equal(s["mask"].numpy(), tif == 2)
        change = s["mask"].bool()
        diff = s["image2"][L1C.index("B04")] - s["image1"][L1C.index("B04")]  # 10 m band: exact
        assert float(diff[change].min()) > 0.07 and float(diff[~change].abs().max()) < 0.0011


def test_fake_test_labels_and_city_override(tmp_path: Path) -> None:
    root = fakes.write_oscd(tmp_path, test_labels=True)
    ds = OSCD(root, split="test")
    assert ds.cities == list(fakes.OSCD_TEST) and all(ds.has_mask)
    assert ds.mask_paths[0].parent.parent.parent.name == LABEL_DIRS[1]
    sub = OSCD(root, cities=["cupertino", "dubai"])
    assert sub.cities == ["cupertino", "dubai"] and len(sub) == 2


def test_cache_returns_the_same_city(fake_root: Path) -> None:
    ds = OSCD(fake_root, cache=True, bands="10m")
    a, b = ds[0], ds[0]
    assert a["image1"] is b["image1"] and a["image1"].shape[0] == 4


# ---- errors -----------------------------------------------------------------------------------


def test_root_and_option_errors(tmp_path: Path, fake_root: Path) -> None:
    with pytest.raises(
        DatasetError, match=r"has no folder 'Onera Satellite Change Detection dataset - Images'"
    ):
        OSCD(tmp_path)
    with pytest.raises(ConfigError, match="split"):
        OSCD(fake_root, split="val")
    with pytest.raises(ConfigError, match="mask_source"):
        OSCD(fake_root, mask_source="jpg")
    with pytest.raises(BandError, match="B13"):
        OSCD(fake_root, bands="B13")
    with pytest.raises(DatasetError, match="imgs_1_rect"):
        OSCD(fake_root, rectified=True)
    with pytest.raises(DatasetError, match="'nowhere' has no folder"):
        OSCD(fake_root, cities=["nowhere"])


def test_missing_band_and_city_list(tmp_path: Path) -> None:
    root = fakes.write_oscd(tmp_path)
    next((root / IMAGES_DIR / "beirut" / "imgs_2").glob("*_B8A.tif")).unlink()
    with pytest.raises(DatasetError, match=r"B8A missing in .*beirut/imgs_2"):
        OSCD(root)
    OSCD(root, bands="10m")  # the bands still present load fine
    (root / IMAGES_DIR / "test.txt").unlink()
    with pytest.raises(DatasetError, match="test.txt"):
        OSCD(root, split="test")


def _rewrite_tif(path: Path, data: np.ndarray) -> None:
    with rasterio.open(
        path, "w", driver="GTiff", height=data.shape[0], width=data.shape[1], count=1, dtype=data.dtype
    ) as dst:
        dst.write(data[None])


def test_bad_mask_values_and_shapes(tmp_path: Path) -> None:
    root = fakes.write_oscd(tmp_path)
    city = "abudhabi"
    cm = root / LABEL_DIRS[0] / city / "cm"
    tif = _read(cm / f"{city}-cm.tif")
    _rewrite_tif(cm / f"{city}-cm.tif", (tif - 1).astype(np.uint8))  # 0 / 1: not the official 1 / 2 coding
    ds = OSCD(root)
    with pytest.raises(
        DatasetError, match=r"unexpected change-map value\(s\) \[0\].*1 = no change and 2 = change"
    ):
        ds.load_mask(0)
    assert OSCD(root, mask_source="png").load_mask(0).sum() == int((tif == 2).sum())

    png = np.asarray(Image.open(cm / "cm.png")).copy()
    png[0, 0, 0] = 128  # colour channels disagree
    Image.fromarray(png, "RGBA").save(cm / "cm.png")
    with pytest.raises(DatasetError, match="not a grey change map"):
        OSCD(root, mask_source="png").load_mask(0)
    png[0, 0, :3] = 128  # grey but not 0 / 255
    Image.fromarray(png, "RGBA").save(cm / "cm.png")
    with pytest.raises(DatasetError, match=r"value\(s\) \[128\]"):
        OSCD(root, mask_source="png").load_mask(0)

    _rewrite_tif(cm / f"{city}-cm.tif", np.ones((5, 5), np.uint8))
    with pytest.raises(DatasetError, match=r"5 x 5 px but the 10 m grid .* 37 x 41"):
        OSCD(root)[0]


def test_10m_bands_must_agree_and_missing_labels(tmp_path: Path) -> None:
    root = fakes.write_oscd(tmp_path)
    b03 = next((root / IMAGES_DIR / "beirut" / "imgs_1").glob("*_B03.tif"))
    _rewrite_tif(b03, np.ones((10, 10), np.uint16))
    with pytest.raises(DatasetError, match=r"10 m bands of .*beirut/imgs_1 differ in size"):
        OSCD(root)[1]
    shutil.rmtree(root / LABEL_DIRS[0] / "cupertino")
    with pytest.raises(DatasetError, match="no change map for OSCD city 'cupertino'"):
        OSCD(root)
    ds = OSCD(root, require_labels=False)
    assert ds.has_mask == [True, True, False] and ds[2]["mask"] is None
