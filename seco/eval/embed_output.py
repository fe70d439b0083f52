"""Where ``seco embed`` writes: a GeoParquet of patch embeddings (footprint polygons, GeoParquet metadata) and a
dense float32 GeoTIFF (one pixel per patch cell), each through a temporary file renamed on success.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import rasterio
import shapely
from rasterio.transform import Affine
from rasterio.windows import Window

from seco.fileutil import AtomicFile

__all__ = ["DenseSink", "ParquetSink", "footprints"]

#: The GeoParquet specification version of the embeddings file's ``geo`` metadata.
GEOPARQUET_VERSION = "1.1.0"


def _geo_metadata(crs: Any, bbox: list[float]) -> dict[str, Any]:
    return {
        "version": GEOPARQUET_VERSION,
        "primary_column": "geometry",
        "columns": {
            "geometry": {
                "encoding": "WKB",
                "geometry_types": ["Polygon"],
                "crs": crs.to_dict(projjson=True) if crs is not None else None,
                "bbox": bbox,
            }
        },
    }


def footprints(transform: Affine, windows: np.ndarray) -> np.ndarray:
    """WKB polygons of pixel windows ``(n, 4)`` = (x_off, y_off, width, height) under ``transform``."""
    x0, y0 = windows[:, 0].astype(np.float64), windows[:, 1].astype(np.float64)
    x1, y1 = x0 + windows[:, 2], y0 + windows[:, 3]
    px = np.stack([x0, x1, x1, x0, x0], axis=1)  # (n, 5) ring in pixel coordinates
    py = np.stack([y0, y0, y1, y1, y0], axis=1)
    a, b, c, d, e, f = transform.a, transform.b, transform.c, transform.d, transform.e, transform.f
    xs, ys = a * px + b * py + c, d * px + e * py + f
    polys = shapely.polygons(np.stack([xs, ys], axis=-1))
    return shapely.to_wkb(polys)


class ParquetSink:
    """Streams rows to ``<out>`` through a temporary file renamed on success."""

    def __init__(self, out: Path, crs: Any, bbox: list[float], dim: int, meta: dict[str, Any]) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        self.schema = pa.schema(
            [
                ("source", pa.string()),
                ("row", pa.int32()),
                ("col", pa.int32()),
                ("x_off", pa.int32()),
                ("y_off", pa.int32()),
                ("width", pa.int32()),
                ("height", pa.int32()),
                ("valid_fraction", pa.float32()),
                ("embedding", pa.list_(pa.float32(), dim)),
                ("geometry", pa.binary()),
            ],
            metadata={b"geo": json.dumps(_geo_metadata(crs, bbox)).encode(), b"seco": json.dumps(meta).encode()},
        )
        self.file = AtomicFile(out)
        try:
            self.writer = pq.ParquetWriter(self.file.tmp, self.schema)
        except BaseException:
            self.file.discard()
            raise
        self.dim = dim

    def write(self, cols: dict[str, Any], emb: np.ndarray) -> None:
        arrays = [pa.array(cols[n], type=self.schema.field(n).type) for n in self.schema.names[:8]]
        flat = pa.array(emb.astype(np.float32).ravel(), type=pa.float32())
        arrays.append(pa.FixedSizeListArray.from_arrays(flat, self.dim))
        arrays.append(pa.array(cols["geometry"], type=pa.binary()))
        self.writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema))

    def close(self) -> None:
        self.writer.close()
        self.file.commit()

    def abort(self) -> None:
        try:
            self.writer.close()
        finally:
            self.file.discard()


class DenseSink:
    """A float32 GeoTIFF of ``dim`` bands, one pixel per patch cell, written one grid row at a time to a
    temporary file that is renamed on success (removed on failure)."""

    def __init__(self, path: Path, src: Any, nrows: int, ncols: int, dim: int, patch: int, step: int,
                 meta: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        shift = (patch - step) / 2.0  # centre the step-sized cell on the patch centre
        self.ncols = ncols
        self.file = AtomicFile(path)
        try:
            self.dst = rasterio.open(
                self.file.tmp, "w", driver="GTiff", width=ncols, height=nrows, count=dim, dtype="float32",
                crs=src.crs, transform=src.transform @ Affine.translation(shift, shift) @ Affine.scale(step),
                nodata=float("nan"), interleave="pixel", BIGTIFF="IF_SAFER",
            )
        except BaseException:
            self.file.discard()
            raise
        self.dst.update_tags(**{k: json.dumps(v) for k, v in meta.items() if k != "config"})

    def write_row(self, r: int, line: np.ndarray) -> None:
        self.dst.write(line, window=Window(0, r, self.ncols, 1))  # (dim, 1, ncols)

    def __enter__(self) -> DenseSink:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        try:
            self.dst.close()
        except BaseException:
            self.file.discard()
            raise
        if exc_type is None:
            self.file.commit()
        else:
            self.file.discard()
