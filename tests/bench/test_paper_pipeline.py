"""The benchmark's re-implementation of the paper's SeCo data path (bench/paper_pipeline.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench import paper_pipeline as pp


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny synth store (6 locations x 5 dates x 48 px) exported as JPEG and as uncompressed GeoTIFFs."""
    from seco.synth import make_store

    root = tmp_path_factory.mktemp("paper")
    store = make_store(root / "s.zarr", num_locations=6, num_dates=5, patch_size=48, seed=1, progress=False)
    from seco.store import open_store

    s = open_store(store)
    return {
        "store": store,
        "jpeg": pp.export_paper_layout(s, root / "jpeg", "RGB"),
        "raw": pp.export_paper_layout(s, root / "raw", "all", locations=[0, 1], compress=None),
    }


def test_layout_is_the_downloaders(trees: dict[str, Path]) -> None:
    import rasterio

    from seco.store import open_store

    s = open_store(trees["store"])
    locs = sorted(p.name for p in trees["jpeg"].iterdir())
    assert locs == [f"{i:06d}" for i in range(6)]
    for i in range(6):  # one folder per valid date, 3 band files + metadata each
        dates = sorted(p for p in (trees["jpeg"] / f"{i:06d}").iterdir())
        assert len(dates) == int(s.valid(i).sum())
        assert sorted(f.name for f in dates[0].iterdir()) == ["B2.tif", "B3.tif", "B4.tif", "metadata.json"]
    with rasterio.open(next((trees["jpeg"] / "000000").iterdir()) / "B4.tif") as f:
        assert (f.count, f.dtypes[0], f.width, f.compression.name.upper()) == (1, "uint8", 48, "JPEG")
        assert f.crs.is_geographic
    # uncompressed: exactly the downloader's uint8 = reflectance in [0, 1] * 255; 20/60 m bands at native size
    d0 = sorted((trees["raw"] / "000000").iterdir())
    t0 = int(np.flatnonzero(s.valid(0))[0])
    with rasterio.open(d0[0] / "B4.tif") as f:
        got = f.read(1)
    dn = s.read(0, dates=[t0], bands=["B04"])[0, 0]
    np.testing.assert_array_equal(got, (np.clip(dn / 10000.0, 0, 1) * 255).astype(np.uint8))
    with rasterio.open(d0[0] / "B11.tif") as f, rasterio.open(d0[0] / "B1.tif") as g:
        assert (f.width, g.width) == (24, 8)  # 48 px at 10 m = 24 at 20 m = 8 at 60 m


def test_read_image_stretches_with_the_official_quantiles(trees: dict[str, Path]) -> None:
    date = sorted((trees["raw"] / "000001").iterdir())[0]
    img = pp.read_image(date)
    assert img.mode == "RGB" and img.size == (48, 48)
    import rasterio

    with rasterio.open(date / "B3.tif") as f:
        b3 = f.read(1).astype(np.float64)
    want = np.clip((b3 - 2.0) / (103.0 - 2.0) * 255.0, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(img)[..., 1], want)  # channel order B4, B3, B2
    assert pp.paper_name("B02") == "B2" and pp.paper_name("B8A") == "B8A" and pp.paper_name("B11") == "B11"


def test_dataset_outputs_shapes_dtypes_ranges(trees: dict[str, Path]) -> None:
    ds = pp.PaperSeCoDataset(trees["jpeg"], seed=0, size=32)
    assert len(ds) == 6
    mean = torch.tensor(pp.IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(pp.IMAGENET_STD)[:, None, None]
    for i in range(len(ds)):
        q, keys = ds[i]
        assert isinstance(keys, list) and len(keys) == 3
        for v in (q, *keys):
            assert v.shape == (3, 32, 32) and v.dtype == torch.float32
            x = v * std + mean  # back to ToTensor's [0, 1]
            assert float(x.min()) >= -1e-5 and float(x.max()) <= 1 + 1e-5
            assert torch.allclose(x * 255, (x * 255).round(), atol=1e-3)  # from uint8 images
    q, keys = next(iter(pp.paper_loader(trees["jpeg"], batch_size=4)))
    assert q.shape == (4, 3, 224, 224) and [k.shape for k in keys] == [(4, 3, 224, 224)] * 3


def test_same_seed_same_output(trees: dict[str, Path]) -> None:
    a = pp.PaperSeCoDataset(trees["jpeg"], seed=5, size=32)
    b = pp.PaperSeCoDataset(trees["jpeg"], seed=5, size=32)
    for i in (0, 3):
        qa, ka = a[i]
        qb, kb = b[i]
        assert torch.equal(qa, qb) and all(torch.equal(x, y) for x, y in zip(ka, kb, strict=True))
    c = pp.PaperSeCoDataset(trees["jpeg"], seed=6, size=32)
    assert not torch.equal(a[0][0], c[0][0])
    a.set_epoch(1)  # another epoch draws other dates and augmentations
    assert not torch.equal(a[0][0], b[0][0])


def test_augment_ops() -> None:
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))
    for _ in range(20):
        out = pp.augment(img, rng)
        assert out.mode == "RGB" and out.size == img.size
    assert np.array_equal(np.asarray(pp._adjust_hue(img, 0.0)), np.asarray(img.convert("HSV").convert("RGB")))
    g = np.asarray(pp._grayscale3(img))
    assert np.array_equal(g[..., 0], g[..., 1]) and np.array_equal(g[..., 0], np.asarray(img.convert("L")))
    for _ in range(200):
        top, left, h, w = pp.random_resized_crop_params(rng, 50, 40)
        assert 0 <= top <= 40 - h and 0 <= left <= 50 - w and h > 0 and w > 0
        assert 0.2 * 2000 * 0.9 <= h * w <= 2000
    # fallback when no attempt fits: a central crop at the nearest allowed ratio
    assert pp.random_resized_crop_params(rng, 100, 10, scale=(5.0, 5.0)) == (0, 43, 10, 13)
    x = pp.preprocess(img, rng, 24)
    assert x.shape == (3, 24, 24) and x.dtype == torch.float32


def test_bench_loader_runs_on_a_tiny_store(trees: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    from bench import bench_loader

    bench_loader.main(["--store", str(trees["store"]), "--rounds", "1", "--batches", "1", "--batch", "2",
                       "--size", "24", "--no-raw"])
    out = capsys.readouterr().out
    for row in ("| paper (RGB), full pipeline | RGB |", "| seco (RGB), views on this CPU | RGB |",
                "| seco (12 bands), views on this CPU | 12 |", "| seco loader (RGB): store -> batch on the CPU",
                "| seco loader (12 bands): store -> batch on the CPU", "| seco (RGB) | make_views"):
        assert row in out, row
