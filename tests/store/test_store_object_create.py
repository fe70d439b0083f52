"""Creating a store on an object store (no rename): a creation a crash interrupted is recognised and redone.

``memory://`` is an fsspec object store like S3 in what matters here (no rename; each object written whole).
tests/integration/test_collect_s3.py does the same on a real S3-compatible server with SIGKILL.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import zarr

import seco.store.create as W
from seco.errors import StoreError
from seco.store import create_store, open_store
from seco.store.schema import Location


def _url() -> str:
    return f"memory://seco-object-create-{uuid.uuid4().hex}/s.zarr"


def test_an_interrupted_creation_is_redone(monkeypatch):
    url = _url()

    def crash(*a, **k):
        raise KeyboardInterrupt("killed before the root attributes")

    monkeypatch.setattr(W, "_manifest", crash)  # the last write of the creation
    with pytest.raises(KeyboardInterrupt):
        create_store(url, ["B02", "B03"], num_dates=2, patch_size=8)
    monkeypatch.undo()
    with pytest.raises(StoreError, match="not a seco store"):
        open_store(url)  # half-made: readers refuse it
    w = create_store(url, ["B02", "B03"], num_dates=2, patch_size=8, exist_ok=True)
    w.append("a", np.ones((2, 2, 8, 8), np.uint16), np.array([True, False]), [{
        "item_id": "x", "datetime": "2021-01-01T00:00:00Z", "cloud_fraction": 0.0, "nodata_fraction": 0.0,
        "crs": "EPSG:32633", "transform": (10, 0, 0, 0, -10, 0), "lat": 1.0, "lon": 2.0}, None])
    w.close()
    s = open_store(url)
    assert s.keys() == ["a"] and W._CREATING not in s.attrs


def test_other_content_is_never_cleared():
    url = _url()
    g = zarr.open_group(store=Location.parse(url).open(read_only=False), mode="w", attributes={"mine": 1})
    g.create_array("x", shape=(2,), dtype="int8")
    with pytest.raises(StoreError, match="not empty"):
        create_store(url, ["B02"], num_dates=1, patch_size=8, exist_ok=True)
    assert dict(zarr.open_group(store=Location.parse(url).open(read_only=True), mode="r").attrs) == {"mine": 1}
