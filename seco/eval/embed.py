"""``seco embed``: one embedding per patch of a GeoTIFF, to GeoParquet and/or a dense feature GeoTIFF.

Tiling: patches of ``patch`` px at a step of ``stride`` px (default ``patch``) from the top-left corner; the
last row / column overhangs the raster when the size is not a multiple of the step, and its missing pixels
are filled by reflection, so the patches cover the whole raster. A patch whose pixels are all nodata is
skipped (no row; NaN in the dense output).

Bands are matched by name: from the file's band descriptions (``B02``, ``b2``, ``B8A``, or a text naming
one band such as ``"B04 (red)"``) or from ``--bands`` (the file's bands in file order). The model's bands are
read, in the model's order, with windowed reads of one strip (``patch`` rows) at a time, so memory stays
bounded whatever the raster size (a 10980 px Sentinel-2 tile included).

Values: ``reflectance = (DN + offset) / scale`` (``scale`` 10000 for integer files, 1 for float files).

GeoParquet output (GeoParquet 1.1, written with pyarrow): one row per patch with ``source`` (file name),
``row`` / ``col`` (patch grid position), ``x_off`` / ``y_off`` / ``width`` / ``height`` (the pixel window,
clipped to the raster), ``valid_fraction`` (share of non-nodata pixels), ``embedding``
(``fixed_size_list<float32>[D]``) and ``geometry`` (WKB polygon of the clipped window in the raster's
CRS); the ``geo`` metadata carries the CRS as PROJJSON. A ``seco`` metadata entry records the weights, bands,
normalisation and tiling.

Dense output: a float32 GeoTIFF with ``D`` bands and one pixel per patch cell: pixel ``(r, c)`` is the
embedding of the patch at ``(r * stride, c * stride)`` and covers the ``stride`` square centred on that
patch's centre (the patch footprint itself when ``stride == patch``).
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.enums import Resampling
from rasterio.windows import Window

from seco.bands import L1C, S1_BANDS, normalize_name
from seco.data.normalize import Normalization
from seco.data.sar import channel_stats, s1_name
from seco.errors import BandError, ConfigError, DatasetError
from seco.eval.backbone import InputTransform, load_weights, resolve_bands, resolve_device
from seco.eval.config import EmbedConfig
from seco.eval.embed_input import ChannelReader, band_name, check_s1_values, check_same_grid, open_parts
from seco.eval.embed_output import DenseSink, ParquetSink, footprints
from seco.eval.features import image_stats

_BAND_IN_TEXT = re.compile(r"\bB(8A|\d{1,2})\b", re.IGNORECASE)
_ROWS_PER_GROUP = 4096
#: GDAL block cache while embedding, in MB.
_GDAL_CACHE_MB = 64


def file_bands(src: rasterio.DatasetReader, given: str | None, path: Path) -> tuple[str, ...]:
    """The canonical band names of a raster's bands, in file order.

    Raises:
        BandError: when ``given`` does not list one name per band, or descriptions do not name bands.
    """
    if given is not None:
        names = tuple(band_name(b) for b in given.split(",") if b.strip())
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise BandError(f"--bands lists {', '.join(dup)} twice; name every band of the file once, in order")
        if len(names) != src.count:
            raise BandError(
                f"--bands lists {len(names)} band(s) but {path} has {src.count}; name every band of the file, in order"
            )
        return names
    found: list[str] = []
    for i, d in enumerate(src.descriptions, start=1):
        name = None
        if d:
            try:
                name = band_name(d)
            except BandError:
                hits = {normalize_name("B" + m) for m in _BAND_IN_TEXT.findall(d) if _valid("B" + m)}
                name = hits.pop() if len(hits) == 1 else None
        if name is None:
            raise BandError(
                f"band {i} of {path} has description {d!r}, which names no Sentinel-2 band or S1 polarisation; give "
                "the file's bands in order with --bands, e.g. --bands B02,B03,B04,B08 or --bands VV,VH"
            )
        found.append(name)
    dup = sorted({n for n in found if found.count(n) > 1})
    if dup:
        raise BandError(f"{path} names band(s) {', '.join(dup)} twice in its descriptions; give --bands")
    return tuple(found)


def _valid(name: str) -> bool:
    try:
        normalize_name(name)
        return True
    except BandError:
        return False


def _inputs(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".tif", ".tiff") and p.is_file())
        if not files:
            raise DatasetError(f"no *.tif / *.tiff files in {path}; give a GeoTIFF or a folder of them")
        return files
    if not path.is_file():
        raise DatasetError(f"--input {str(path)!r} does not exist; give a GeoTIFF or a folder of them")
    return [path]


def _open(path: Path) -> rasterio.DatasetReader:
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioError as e:
        raise DatasetError(f"cannot read {path} as a raster: {e}") from e


def grid_positions(size: int, patch: int, step: int) -> list[int]:
    """Offsets of the patches along one axis: 0, step, ... until the raster is covered."""
    n = 1 if size <= patch else math.ceil((size - patch) / step) + 1
    return [i * step for i in range(n)]


@dataclass(frozen=True)
class _Scaling:
    scale: float
    offset: float


def _scaling(src: rasterio.DatasetReader, cfg: EmbedConfig) -> _Scaling:
    if cfg.scale is not None:
        return _Scaling(cfg.scale, cfg.offset)
    is_float = np.issubdtype(np.dtype(src.dtypes[0]), np.floating)
    return _Scaling(1.0 if is_float else 10000.0, cfg.offset)


def _pad(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """Pad the last two axes of (C, h0, w0) to (h, w) at the bottom / right by reflection (edge if too small)."""
    ph, pw = h - a.shape[-2], w - a.shape[-1]
    if ph == 0 and pw == 0:
        return a
    widths = ((0, 0), (0, ph), (0, pw))
    if ph < a.shape[-2] and pw < a.shape[-1]:
        return np.pad(a, widths, mode="reflect")
    return np.pad(a, widths, mode="edge")


def iter_rows(
    reader: ChannelReader, patch: int, step: int
) -> Iterator[tuple[int, int, list[tuple[int, int, np.ndarray | None, float]]]]:
    """Yield ``(row, y_off, [(col, x_off, patch (C, patch, patch) float32 in model units or None, valid_fraction)])``
    per grid row; ``None`` for a patch that is all nodata.

    Reads one strip of ``patch`` rows per grid row (windowed), so memory is ``C x patch x width``.
    """
    h, w = reader.height, reader.width
    cols = grid_positions(w, patch, step)
    for r, y0 in enumerate(grid_positions(h, patch, step)):
        values, valid = reader.read(Window(0, y0, w, min(patch, h - y0)))  # (C, rows, W), (rows, W)
        out: list[tuple[int, int, np.ndarray | None, float]] = []
        for c, x0 in enumerate(cols):
            frac = float(valid[:, x0 : x0 + patch].mean())
            out.append((c, x0, _pad(values[:, :, x0 : x0 + patch], patch, patch) if frac > 0 else None, frac))
        yield r, y0, out


def _stats(paths: list[Path], cfg: EmbedConfig, bands: tuple[str, ...], fbands: dict[Path, tuple[str, ...]]):
    """Per-band statistics from decimated reads (at most 512 x 512 px per file), nodata excluded."""
    arrays = []
    for p in paths:
        with _open(p) as src:
            idx = [fbands[p].index(b) + 1 for b in bands]
            oh, ow = min(src.height, 512), min(src.width, 512)
            a = src.read(idx, out_shape=(len(idx), oh, ow), resampling=Resampling.nearest)  # (C, oh, ow)
            s = _scaling(src, cfg)
            keep = np.ones(a.shape[1:], bool) if src.nodata is None else ~np.all(a == src.nodata, axis=0)
            refl = (a.astype(np.float32) + s.offset) / s.scale
            arrays.append(torch.from_numpy(refl[:, keep][:, None, :]))  # (C, 1, n)
    return image_stats(arrays, bands)


def _scan_inputs(paths: list[Path], cfg: EmbedConfig) -> tuple[dict[Path, tuple[str, ...]], Any, list[float]]:
    """(band names per file, the first file's CRS, the union of the files' bounds).

    Raises:
        BandError: a file whose bands cannot be named.
        ConfigError: files in different CRSs for one GeoParquet output.
    """
    fbands: dict[Path, tuple[str, ...]] = {}
    crs = None
    bounds: list[float] = []
    for i, p in enumerate(paths):
        with _open(p) as src:
            fbands[p] = file_bands(src, cfg.bands, p)
            if i == 0:
                crs = src.crs
            elif src.crs != crs and cfg.out is not None:
                raise ConfigError(
                    f"{p} is in {src.crs} but {paths[0]} in {crs}; one GeoParquet file holds one CRS. Embed the "
                    "files separately (or reproject them to one CRS first)"
                )
            b = src.bounds
            bounds = [b.left, b.bottom, b.right, b.top] if not bounds else [
                min(bounds[0], b.left), min(bounds[1], b.bottom), max(bounds[2], b.right), max(bounds[3], b.top)
            ]
    return fbands, crs, bounds


#: Plausible surface reflectance: the median of a Sentinel-2 scene's valid pixels lies well inside this range.
PLAUSIBLE_MEDIAN = (0.002, 1.5)


def check_values(paths: list[Path], cfg: EmbedConfig, bands: tuple[str, ...], fbands: dict[Path, tuple[str, ...]]
                 ) -> None:
    """Refuse inputs whose values cannot be reflectance under the scaling in force, before any work: 8-bit
    files without an explicit ``--scale`` (at most 255 DN: no Sentinel-2 reflectance x 10000), and files whose
    median reflectance (decimated read, nodata excluded) is implausible, e.g. DN stored as float (median ~1500
    with the float default ``--scale 1``).

    Raises:
        ConfigError: naming the file, what was seen, and the flag that fixes it.
    """
    for p in paths:
        with _open(p) as src:
            dtype = np.dtype(src.dtypes[0])
            if dtype.itemsize == 1 and cfg.scale is None:
                raise ConfigError(
                    f"{p} is {dtype} (values up to {np.iinfo(dtype).max}): 8-bit data is no Sentinel-2 reflectance "
                    "x 10000, and the weights expect reflectance. Pass --scale (and --offset) that turn its values "
                    "into reflectance, e.g. --scale 255 for a 0-255 stretch of reflectance 0-1"
                )
            idx = [fbands[p].index(b) + 1 for b in bands]
            oh, ow = min(src.height, 256), min(src.width, 256)
            a = src.read(idx, out_shape=(len(idx), oh, ow), resampling=Resampling.nearest)  # (C, oh, ow)
            keep = np.ones(a.shape[1:], bool) if src.nodata is None else ~np.all(a == src.nodata, axis=0)
            if not keep.any():
                continue
            s = _scaling(src, cfg)
            med = float(np.median((a[:, keep].astype(np.float64) + s.offset) / s.scale))
            lo, hi = PLAUSIBLE_MEDIAN
            if not lo <= med <= hi:
                flags = f"--scale {s.scale:g}" + (f" --offset {s.offset:g}" if s.offset else "")
                guess = (" It looks like DN (reflectance x 10000): pass --scale 10000" if med > 100 else
                         " Check --scale and --offset")
                raise ConfigError(
                    f"{p} ({dtype}) has a median of {med:.4g} after {flags} ({'given' if cfg.scale else 'default'} "
                    f"for {'float' if dtype.kind == 'f' else 'integer'} files), not surface reflectance "
                    f"(median {lo:g}-{hi:g}).{guess}"
                )


def _count_patches(paths: list[Path], cfg: EmbedConfig) -> int:
    """Patches of the tiling over every file (nodata patches included)."""
    total = 0
    for p in paths:
        with _open(p) as src:
            total += len(grid_positions(src.height, cfg.patch, cfg.step)) * len(
                grid_positions(src.width, cfg.patch, cfg.step)
            )
    return total


def _s1_pair(paths: list[Path], cfg: EmbedConfig, is_folder: bool) -> tuple[str, ...]:
    """The S1 bands of ``--s1-input`` (empty without it), after checking it pairs with ``--input``.

    Raises:
        ConfigError: a folder input, or a pair off one grid; BandError: an S1 file with S2 bands.
    """
    if cfg.s1_input is None:
        return ()
    s1_path = Path(cfg.s1_input)
    if is_folder:
        raise ConfigError(
            f"--s1-input pairs one S2 GeoTIFF with one S1 GeoTIFF but --input {cfg.input!r} is a folder; embed each pair"
        )
    if not s1_path.is_file():
        raise DatasetError(f"--s1-input {str(s1_path)!r} does not exist; give the S1 GeoTIFF of the pair")
    with _open(paths[0]) as a, _open(s1_path) as b:
        s1_fb = file_bands(b, None, s1_path)
        other = [n for n in s1_fb if s1_name(n) is None]
        if other:
            raise BandError(f"--s1-input {s1_path} holds S2 band(s) {', '.join(other)}; give a file of VV / VH only")
        check_same_grid(a, b, paths[0], s1_path)
    return s1_fb


def _check_sensors(weight_bands: tuple[str, ...] | None, available: tuple[str, ...], cfg: EmbedConfig) -> None:
    """Refuse S1 input to weights without S1 channels.

    Raises:
        BandError: naming the weights' bands and the fix.
    """
    if weight_bands is None or any(s1_name(b) for b in weight_bands):
        return
    s1_given = [b for b in available if s1_name(b)]
    if s1_given and (cfg.s1_input is not None or all(s1_name(b) for b in available)):
        raise BandError(
            f"weights {cfg.weights!r} take Sentinel-2 bands only ({', '.join(weight_bands)}) but the input holds "
            f"Sentinel-1 {', '.join(s1_given)}; use a backbone exported with VV / VH among its bands"
            + (", or drop --s1-input" if cfg.s1_input is not None else "")
        )


def _reader(p: Path, fb: tuple[str, ...], s1_fb: tuple[str, ...], bands: tuple[str, ...], cfg: EmbedConfig
            ) -> ChannelReader:
    with _open(p) as src:
        s = _scaling(src, cfg)
    s1_path = Path(cfg.s1_input) if cfg.s1_input is not None else None
    return open_parts(p, fb, s1_path, s1_fb, bands, s.scale, s.offset, cfg.s1_units == "linear")


def _mixed_stats(paths: list[Path], cfg: EmbedConfig, bands: tuple[str, ...], fbands: dict[Path, tuple[str, ...]],
                 s1_fb: tuple[str, ...]) -> Normalization:
    """Per-channel statistics over S2 (reflectance) and S1 (dB) channels, decimated reads, no data excluded."""
    arrays = []
    for p in paths:
        reader = _reader(p, fbands[p], s1_fb, bands, cfg)
        try:
            oh, ow = min(reader.height, 512), min(reader.width, 512)
            values, valid = reader.read(Window(0, 0, reader.width, reader.height), out_shape=(oh, ow))
        finally:
            reader.close()
        arrays.append(values[:, valid])  # (C, n)
    return channel_stats(arrays, bands)


def run_embed(cfg: EmbedConfig) -> dict[str, Any]:
    """Embed every patch of ``cfg.input`` (see the module docstring).

    Returns:
        ``{"patches": n, "files": k, "outputs": [paths], "feature_dim": D}``.

    Raises:
        BandError, DatasetError, ConfigError, CheckpointError: before any output is written.
    """
    paths = _inputs(Path(cfg.input))
    is_folder = Path(cfg.input).is_dir()
    device = resolve_device(cfg.device)
    spec = load_weights(cfg.weights, cfg.backbone, cfg.weights_bands, 0)
    fbands, crs, bounds = _scan_inputs(paths, cfg)
    s1_fb = _s1_pair(paths, cfg, is_folder)
    first = fbands[paths[0]] + s1_fb
    if spec.bands is None and any(s1_name(b) for b in first):
        # random init on S1 (+ S2) input: every channel of the file(s), S2 first
        bands = tuple(b for b in first if not s1_name(b)) + tuple(b for b in first if s1_name(b))
    else:
        bands = resolve_bands(spec.bands, None, first if spec.bands is None else L1C + S1_BANDS, cfg.weights)
    _check_sensors(spec.bands, first, cfg)
    for p in paths:  # every file must hold the model's bands
        missing = [b for b in bands if b not in fbands[p] + s1_fb]
        if missing:
            hint = " (the S1 bands: give the S1 file with --s1-input)" if all(s1_name(b) for b in missing) else ""
            raise BandError(
                f"{p} lacks band(s) {', '.join(missing)} that weights {cfg.weights!r} need (it has "
                f"{', '.join(fbands[p] + s1_fb)}){hint}; give files with those bands, or fix the names with --bands"
            )
    s2_bands = tuple(b for b in bands if s1_name(b) is None)
    if s2_bands:
        check_values(paths, cfg, s2_bands, fbands)
    if len(s2_bands) < len(bands):
        for p in paths:
            reader = _reader(p, fbands[p], s1_fb, bands, cfg)
            try:
                check_s1_values(reader, str(cfg.s1_input or p), cfg.s1_units)
            finally:
                reader.close()
    lb = spec.build(bands)
    transform = lb.transform
    norm_source = f"weights ({lb.kind})"
    if lb.normalization is None:
        stats = _stats(paths, cfg, bands, fbands) if not s1_fb and s2_bands == bands else (
            _mixed_stats(paths, cfg, bands, fbands, s1_fb))
        transform = InputTransform(stats)
        norm_source = "statistics of the input (decimated reads)"
    model = lb.model.to(device).eval()
    meta = {
        "weights": cfg.weights, "weights_kind": lb.kind, "weights_sha256": lb.sha256, "backbone": lb.name,
        "bands": list(bands), "units": ["dB" if s1_name(b) else "reflectance" for b in bands],
        "s1_input": cfg.s1_input, "s1_units_in": cfg.s1_units if len(s2_bands) < len(bands) else None,
        "normalization": norm_source, "transform": transform.to_dict(),
        "patch": cfg.patch, "stride": cfg.step, "feature_dim": model.feature_dim, "config": cfg.to_dict(),
    }
    dense_dir = None
    if cfg.dense is not None and is_folder:
        dense_dir = Path(cfg.dense)
        dense_dir.mkdir(parents=True, exist_ok=True)
    writer = ParquetSink(Path(cfg.out), crs, bounds, model.feature_dim, meta) if cfg.out is not None else None
    bar = None
    if cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=_count_patches(paths, cfg), desc="embed", unit="patch", dynamic_ncols=True)
    outputs: list[str] = []
    n_done = 0
    try:
        # Each strip is read once, so GDAL's block cache (default 5 % of RAM) only grows memory with the
        # raster size; a small one keeps it flat.
        with rasterio.Env(GDAL_CACHEMAX=_GDAL_CACHE_MB):
            for p in paths:
                dense_path = None
                if cfg.dense is not None:
                    dense_path = dense_dir / f"{p.stem}.tif" if dense_dir is not None else Path(cfg.dense)
                n_done += _embed_file(p, fbands[p], s1_fb, bands, model, transform, cfg, device, writer,
                                      dense_path, meta, bar)
                if dense_path is not None:
                    outputs.append(str(dense_path))
        if writer is not None:
            writer.close()
            outputs.insert(0, str(cfg.out))
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
    return {"patches": n_done, "files": len(paths), "outputs": outputs, "feature_dim": model.feature_dim}


@torch.no_grad()
def _forward(model: Any, transform: InputTransform, batch: list[np.ndarray], device: torch.device, bf16: bool):
    """(B, C, p, p) reflectance patches -> (B, D) float32 embeddings."""
    x = transform.apply(torch.from_numpy(np.stack(batch)).to(device))  # (B, C, p, p)
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
        return model.forward_features(x).float().cpu().numpy()  # (B, D)


def _fill_values(transform: InputTransform, bands: tuple[str, ...]) -> np.ndarray:
    """Per channel, what S1 no data inside a valid patch is fed as: the normalisation mean (0 once normalised)."""
    norm = transform.normalization
    return np.asarray(norm.mean if norm is not None else [0.0] * len(bands), np.float32)


def _embed_file(
    path: Path, fb: tuple[str, ...], s1_fb: tuple[str, ...], bands: tuple[str, ...], model: Any,
    transform: InputTransform,
    cfg: EmbedConfig, device: torch.device, sink: ParquetSink | None, dense_path: Path | None,
    meta: dict[str, Any], bar: Any,
) -> int:
    """Embed one file (or S2 + S1 pair) row of patches at a time; returns the number of patches embedded."""
    step, dim = cfg.step, model.feature_dim
    done = 0
    with _open(path) as src, contextlib.ExitStack() as stack:
        scaling = _scaling(src, cfg)
        s1_path = Path(cfg.s1_input) if cfg.s1_input is not None else None
        reader = open_parts(path, fb, s1_path, s1_fb, bands, scaling.scale, scaling.offset, cfg.s1_units == "linear")
        stack.callback(reader.close)
        reader.fill = _fill_values(transform, bands)
        ncols = len(grid_positions(src.width, cfg.patch, step))
        nrows = len(grid_positions(src.height, cfg.patch, step))
        dst = None
        if dense_path is not None:
            dst = stack.enter_context(DenseSink(dense_path, src, nrows, ncols, dim, cfg.patch, step, meta))
        rows: dict[str, list] = {k: [] for k in _ROW_COLUMNS}
        embs: list[np.ndarray] = []
        for r, y0, patches in iter_rows(reader, cfg.patch, step):
            todo = [(c, x0, a, f) for c, x0, a, f in patches if a is not None]
            emb = np.zeros((0, dim), np.float32)
            if todo:
                emb = np.concatenate([
                    _forward(model, transform, [a for _, _, a, _ in todo[i : i + cfg.batch_size]], device, cfg.bf16)
                    for i in range(0, len(todo), cfg.batch_size)
                ])
            if dst is not None:
                line = np.full((dim, 1, ncols), np.nan, np.float32)
                for (c, _, _, _), e in zip(todo, emb, strict=True):
                    line[:, 0, c] = e
                dst.write_row(r, line)
            if sink is not None and todo:
                wins = np.array([[x0, y0, min(cfg.patch, src.width - x0), min(cfg.patch, src.height - y0)]
                                 for _, x0, _, _ in todo])
                rows["source"] += [path.name] * len(todo)
                rows["row"] += [r] * len(todo)
                rows["col"] += [c for c, _, _, _ in todo]
                rows["x_off"] += wins[:, 0].tolist()
                rows["y_off"] += wins[:, 1].tolist()
                rows["width"] += wins[:, 2].tolist()
                rows["height"] += wins[:, 3].tolist()
                rows["valid_fraction"] += [f for _, _, _, f in todo]
                rows["geometry"] += list(footprints(src.transform, wins))
                embs.append(emb)
                if sum(len(e) for e in embs) >= _ROWS_PER_GROUP:
                    sink.write(rows, np.concatenate(embs))
                    rows = {k: [] for k in _ROW_COLUMNS}
                    embs = []
            done += len(todo)
            if bar is not None:
                bar.update(len(patches))
        if sink is not None and embs:
            sink.write(rows, np.concatenate(embs))
    return done


_ROW_COLUMNS = ("source", "row", "col", "x_off", "y_off", "width", "height", "valid_fraction", "geometry")
