"""The on-disk layouts of the published corpora that ``seco import`` reads, and finding their locations.

SeCo 100k / 1M (ElementAI/seasonal-contrast ``datasets/seco_downloader.py``; the Zenodo zips unpack to
``seasonal_contrast_100k/`` or ``seasonal_contrast_1m/``)::

    <root>/<location, 6 digits>/<Earth Engine product id>/{B1,B2,...,B9,B11,B12}.tif + metadata.json

SSL4EO-S12 v1 (zhu-xlab/SSL4EO-S12 ``ssl4eo_s12_downloader.py``; torchgeo ``SSL4EOS12``)::

    <root>/{s2c,s2a,s1}/<location, 7 digits (6 in the downloader)>/<product id>/<band>.tif + metadata.json

Band files hold one band each, at their native resolution: 10 m bands ``P`` px, 20 m ``P / 2``, 60 m
``P / 6`` (``P`` = 264 in both corpora).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seco.bands import BY_NAME, L1C, L2A
from seco.errors import ConfigError, CorpusError
from seco.radiometry.corpora import SECO_UINT8, SSL4EO_DN, SSL4EO_V11_ZARR, CorpusScale

__all__ = ["CORPORA", "V11_NAME", "Corpus", "LocationRef", "corpus_for", "file_band_name", "find_locations", "fit_patch"]

SECO_DIRS = ("seasonal_contrast_100k", "seasonal_contrast_1m")
MODALITIES = ("s2c", "s2a", "s1")


def file_band_name(band: str) -> str:
    """Corpus file stem of a seco band name: ``B01`` -> ``B1``, ``B8A`` -> ``B8A``, ``B11`` -> ``B11``."""
    return band if band == "B8A" else f"B{int(band[1:])}"


@dataclass(frozen=True)
class Corpus:
    """One importable corpus and modality.

    Attributes:
        name: ``"seco"`` or ``"ssl4eo-s12"``.
        modality: ``"s2a"`` (Level-2A, 12 bands) or ``"s2c"`` (Level-1C, 13 bands with B10).
        bands: store band order (seco names), the channel axis of the imported store.
        num_dates: ``T`` of the store: SeCo 5 dates, SSL4EO-S12 4 seasons.
        scale: the corpus' value scale (``seco.radiometry.corpora``).
        tree: the expected layout, shown when a root does not match.
    """

    name: str
    modality: str
    bands: tuple[str, ...]
    num_dates: int
    scale: CorpusScale
    tree: str = field(repr=False)

    def resolution(self, band: str) -> int:
        """Native resolution of a band in metres."""
        return BY_NAME[band].resolution_m


_SECO_TREE = """\
  <root>/                       (or its parent holding seasonal_contrast_100k/ or seasonal_contrast_1m/)
    000000/                     one folder per location, 6 digits
      20200713T075609_20200713T081050_T36QZH/   one folder per date (Earth Engine product id), up to 5
        B1.tif B2.tif ... B8.tif B8A.tif B9.tif B11.tif B12.tif   uint8 GeoTIFF, one band each
        metadata.json
    000001/ ..."""

_SSL4EO_TREE = """\
  <root>/
    s2c/  s2a/  s1/             one folder per modality (s2c: L1C 13 bands, s2a: L2A 12 bands)
      0000000/                  one folder per location, 7 digits
        20200402T...._T31UDQ/   one folder per season (product id), 4
          B1.tif ... B12.tif    uint16 GeoTIFF, one band each (s2c also B10.tif)
          metadata.json"""

V11_NAME = "ssl4eo-s12-v1.1"

_V11_TREE = """\
  <root>/                       the download folder (or one split folder: train/ or val/)
    train/  val/
      S2L1C/  S2L2A/  S1GRD/    one folder per modality
        ssl4eos12_train_seasonal_data_000001.zarr.zip   Zarr v2 zip: 64 locations x 4 timestamps
        ..."""

CORPORA: dict[tuple[str, str], Corpus] = {
    ("seco", "s2a"): Corpus("seco", "s2a", L2A, 5, SECO_UINT8, _SECO_TREE),
    ("ssl4eo-s12", "s2c"): Corpus("ssl4eo-s12", "s2c", L1C, 4, SSL4EO_DN, _SSL4EO_TREE),
    ("ssl4eo-s12", "s2a"): Corpus("ssl4eo-s12", "s2a", L2A, 4, SSL4EO_DN, _SSL4EO_TREE),
    (V11_NAME, "s2c"): Corpus(V11_NAME, "s2c", L1C, 4, SSL4EO_V11_ZARR, _V11_TREE),
    (V11_NAME, "s2a"): Corpus(V11_NAME, "s2a", L2A, 4, SSL4EO_V11_ZARR, _V11_TREE),
}


def corpus_for(name: str, modality: str | None) -> Corpus:
    """The corpus description of ``seco import NAME --modality M``.

    Raises:
        ConfigError: Sentinel-1 (out of scope), an unknown corpus or a modality the corpus does not have.
    """
    if modality == "s1":
        raise ConfigError(
            "--modality s1: Sentinel-1 is imported with the S2 dates of the same locations and seasons, into one "
            "store: pass --modality s2c --with-s1 (or s2a)"
        )
    if name == "seco":
        if modality not in (None, "s2a"):
            raise ConfigError(f"--modality {modality}: the SeCo corpus is Level-2A only (12 bands); drop --modality")
        return CORPORA[("seco", "s2a")]
    if name in ("ssl4eo-s12", V11_NAME):
        m = modality or "s2c"
        if (name, m) not in CORPORA:
            raise ConfigError(f"--modality {m!r} unknown; use s2c (L1C, 13 bands) or s2a (L2A, 12 bands)")
        return CORPORA[(name, m)]
    raise ConfigError(f"unknown corpus {name!r}; use 'seco', 'ssl4eo-s12' or '{V11_NAME}'")


@dataclass(frozen=True)
class LocationRef:
    """One location folder of a corpus.

    Attributes:
        name: the folder name (the corpus' location id, digits).
        path: the folder.
    """

    name: str
    path: str

    def key(self, corpus: Corpus) -> str:
        """Store key: unique across corpora and modalities, so one store never mixes two by accident."""
        return f"{corpus.name}/{corpus.modality}/{self.name}"


def _found(root: Path, limit: int = 8) -> str:
    try:
        names = sorted(e.name + ("/" if e.is_dir() else "") for e in os.scandir(root))
    except OSError as e:
        return f"(cannot list: {e})"
    if not names:
        return "(empty)"
    more = f" ... and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _layout_error(corpus: Corpus, root: Path, why: str) -> CorpusError:
    return CorpusError(
        f"{root} does not have the {corpus.name} layout ({why}); found: {_found(root) if root.is_dir() else '-'}. "
        f"Expected:\n{corpus.tree}"
    )


def _location_dirs(d: Path) -> list[LocationRef]:
    refs = [LocationRef(e.name, e.path) for e in os.scandir(d) if e.is_dir() and e.name.isdigit()]
    refs.sort(key=lambda r: (int(r.name), r.name))
    return refs


def resolve_root(corpus: Corpus, root: str | os.PathLike[str]) -> Path:
    """The folder that holds the location folders, from what the user gave.

    SeCo: ``root`` itself, or its only ``seasonal_contrast_100k``/``_1m`` child. SSL4EO-S12: ``root/<modality>``,
    or ``root`` itself when it is named after the modality.

    Raises:
        CorpusError: the root does not exist, is not a folder, or does not have the layout (with the tree).
    """
    p = Path(root).expanduser()
    if not p.exists():
        raise CorpusError(f"corpus root {p} does not exist; give the folder the {corpus.name} archive unpacked to")
    if not p.is_dir():
        raise CorpusError(f"corpus root {p} is a file; give the folder the {corpus.name} archive unpacked to "
                          "(unzip/untar it first)")
    if corpus.name == "seco":
        kids = [p / n for n in SECO_DIRS if (p / n).is_dir()]
        if len(kids) > 1:
            raise CorpusError(f"{p} holds both {' and '.join(k.name for k in kids)}; give one of them as the root")
        return kids[0] if kids else p
    if p.name == corpus.modality:
        return p
    if (p / corpus.modality).is_dir():
        return p / corpus.modality
    present = [m for m in MODALITIES if (p / m).is_dir()]
    if present:
        raise CorpusError(
            f"{p} has no {corpus.modality}/ folder (it has {', '.join(m + '/' for m in present)}); "
            f"choose --modality among {', '.join(m for m in present if m != 's1') or '(none: only s1)'}"
        )
    raise _layout_error(corpus, p, f"no {corpus.modality}/ folder")


def find_locations(corpus: Corpus, root: str | os.PathLike[str]) -> tuple[Path, list[LocationRef]]:
    """Every location folder of the corpus under ``root``, sorted by id.

    Returns:
        The folder holding the locations and their references.

    Raises:
        CorpusError: no location folder (digits) in it, with the expected tree and what was found.
    """
    base = resolve_root(corpus, root)
    refs = _location_dirs(base)
    if not refs:
        raise _layout_error(corpus, base, "no location folders named by digits")
    return base, refs


def fit_patch(a: np.ndarray, n: int, tol: int, band: str) -> tuple[np.ndarray, tuple[int, int], str | None]:
    """(n, n) from (h, w) within ``tol``: centre-crop (the downloaders' center_crop) or zero-pad; returns the
    array, the (row, col) offset of the output's first pixel in the file (negative = padded), and a note (S2 and
    S1 readers alike)."""
    h, w = a.shape
    if (h, w) == (n, n):
        return a, (0, 0), None
    if abs(h - n) > tol or abs(w - n) > tol:
        raise ValueError(f"{band} is {h}x{w} px, expected {n}x{n} (+-{tol})")
    out = np.zeros((n, n), dtype=a.dtype)
    offs = []
    src_slices, dst_slices = [], []
    for size in (h, w):
        if size >= n:
            o = int((size - n + 1) * 0.5)  # the downloaders' center_crop offset
            src_slices.append(slice(o, o + n))
            dst_slices.append(slice(0, n))
        else:
            o = -((n - size) // 2)
            src_slices.append(slice(0, size))
            dst_slices.append(slice(-o, -o + size))
        offs.append(o)
    out[dst_slices[0], dst_slices[1]] = a[src_slices[0], src_slices[1]]
    how = "cropped" if h >= n and w >= n else "padded with nodata" if h <= n and w <= n else "cropped/padded"
    return out, (offs[0], offs[1]), f"{band} {h}x{w} {how} to {n}x{n}"
