"""Value scales of the published pre-training corpora and their conversion to seco's DN (reflectance x 10000).

Facts (sources in docs/IMPORT.md):

- **SeCo 100k / 1M** (ElementAI/seasonal-contrast ``datasets/seco_downloader.py``): Earth Engine
  ``COPERNICUS/S2_SR`` (Level-2A) images divided by 10000, then ``skimage.exposure.rescale_intensity(img,
  in_range=(0, 1), out_range=np.uint8)``, which clips to [0, 1], multiplies by 255 and casts to uint8, i.e.
  **truncates**: ``v = floor(clip(reflectance, 0, 1) * 255)``. Files are JPEG-compressed GeoTIFFs, so on top of
  the 8-bit quantisation the values carry JPEG error. A stored ``v`` therefore means reflectance in
  ``[v / 255, (v + 1) / 255)``; seco converts it to the middle of that interval,
  ``DN = round((v + 0.5) * 10000 / 255)`` (20 .. 9980), except ``v = 255`` (reflectance >= 1, clipped), which
  becomes 10000. ``v = 0`` is taken as a real, dark value (reflectance < 0.0039), not nodata: the downloader
  calls Earth Engine's ``sampleRectangle`` without ``defaultValue`` (the value for masked pixels) and retries
  failed requests elsewhere, so a downloaded patch is expected to hold no masked pixel; it maps
  to DN 20, never to seco's nodata 0 (an inference from the API documentation and the download code).
- **SSL4EO-S12 v1** (zhu-xlab/SSL4EO-S12 ``src/download_data/ssl4eo_s12_downloader.py``): ``COPERNICUS/S2``
  (L1C) and ``COPERNICUS/S2_SR`` (L2A) values written unchanged as uint16 (no compression): already
  reflectance x 10000 (seco's DN), 0 = nodata as in the ESA products. Dates 2019-12 .. 2021-10, before
  processing baseline 04.00 (2022-01-25) added a +1000 offset; a ``PROCESSING_BASELINE`` >= 04.00 in an
  item's ``metadata.json`` is therefore flagged (``baseline_offset``) and harmonised by subtracting 1000.

- **SSL4EO-S12 v1 Sentinel-1** (same downloader, ``get_patch_s1``): Earth Engine ``COPERNICUS/S1_GRD`` (IW,
  VV+VH; Earth Engine's own preprocessing: thermal noise removal, radiometric calibration to sigma0, terrain
  correction with SRTM/ASTER DEM, then ``10 * log10``), sampled with ``sampleRectangle(defaultValue=0)`` and
  written as float32 dB. A value of exactly 0.0 is the default of a masked pixel (no data, e.g. outside the
  swath), never a measurement (a real backscatter is never exactly 0.0 dB in float32 from ``10 * log10``); it
  becomes NaN, as do non-finite values (``s1_db``).
- **SSL4EO-S12 v1.1** (DLR-MF-DAS/SSL4EO-S12-v1.1; Zarr-zip, 64 samples x 4 timestamps per file): S1 GRD as
  float16 dB (the v1 values rounded to float16, ~0.01 dB at -20 dB), S2 L1C/L2A as int16 DN. **The
  Zarr-zip S2 values carry +1000 DN** (see ``SSL4EO_V11_ZARR`` and docs/IMPORT.md for the evidence); the later
  webdataset release does not. ``v11_offset`` decides it per file from the data's darkest valid values.

numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from seco.errors import CorpusError

__all__ = [
    "BASELINE_OFFSET",
    "S1_SSL4EO_RULE",
    "S1_SSL4EO_V11_RULE",
    "SSL4EO_S1_DB",
    "SSL4EO_V11_S1_DB",
    "SSL4EO_V11_ZARR",
    "V11_OFFSET",
    "s1_db",
    "v11_offset",
    "v11_to_dn",
    "SECO_UINT8",
    "SSL4EO_DN",
    "CorpusScale",
    "baseline_offset",
    "seco_uint8_lut",
    "seco_uint8_to_dn",
    "to_dn",
]

#: DN offset added to L1C/L2A values from processing baseline 04.00 (products from 2022-01-25 on).
BASELINE_OFFSET = 1000


@dataclass(frozen=True)
class CorpusScale:
    """How a corpus stores reflectance, recorded in every imported store (``user_attrs.import.radiometry``).

    Attributes:
        name: short id (``"seco-uint8"``, ``"ssl4eo-dn"``).
        source_dtype: dtype of the corpus files.
        source_scale: ``reflectance = value / source_scale`` in the corpus (255 or 10000).
        quantisation: how the corpus rounded reflectance (``"floor"``: truncation; ``"none"``: original DN).
        lossy: whether the files are lossily compressed (JPEG) on top of the quantisation.
        conversion: the rule that made seco's DN (reflectance x 10000) from the corpus value.
        max_abs_error_dn: bound of the quantisation error of the converted DN, before any JPEG error.
        zero_is_nodata: whether a corpus value 0 means "no data" (else it is a real, dark value).
        note: what a user must know.
    """

    name: str
    source_dtype: str
    source_scale: float
    quantisation: str
    lossy: bool
    conversion: str
    max_abs_error_dn: float
    zero_is_nodata: bool
    note: str

    def to_attrs(self) -> dict[str, Any]:
        """JSON form for the store attributes."""
        return asdict(self)


SECO_UINT8 = CorpusScale(
    name="seco-uint8",
    source_dtype="uint8",
    source_scale=255.0,
    quantisation="floor",
    lossy=True,
    conversion="DN = round((v + 0.5) * 10000 / 255) for v < 255 (middle of the truncation interval); v = 255 -> 10000",
    max_abs_error_dn=10000.0 / 255.0 / 2.0,
    zero_is_nodata=False,
    note=("8-bit, lossy (JPEG) corpus: reflectance was clipped to [0, 1] and truncated to 1/255 steps; "
          "values above reflectance 1 are saturated at DN 10000. Never lossless, never finer than 39 DN."),
)

SSL4EO_DN = CorpusScale(
    name="ssl4eo-dn",
    source_dtype="uint16",
    source_scale=10000.0,
    quantisation="none",
    lossy=False,
    conversion="DN = v (already reflectance x 10000); v - 1000 when PROCESSING_BASELINE >= 04.00",
    max_abs_error_dn=0.0,
    zero_is_nodata=True,
    note="uint16 DN exactly as Earth Engine served them (L1C: top of atmosphere, L2A: surface reflectance).",
)


def seco_uint8_lut() -> np.ndarray:
    """(256,) uint16: seco DN of each SeCo corpus value (see the module docstring)."""
    v = np.arange(256, dtype=np.float64)
    dn = np.rint((v + 0.5) * 10000.0 / 255.0)
    dn[255] = 10000.0
    return dn.astype(np.uint16)


_LUT = seco_uint8_lut()


def seco_uint8_to_dn(values: np.ndarray) -> np.ndarray:
    """SeCo corpus uint8 values (any shape) -> uint16 DN, never 0.

    Raises:
        CorpusError: if ``values`` is not uint8 (the corpus is 8-bit; another dtype means another corpus).
    """
    if values.dtype != np.uint8:
        raise CorpusError(
            f"SeCo corpus band has dtype {values.dtype}, expected uint8 (reflectance x 255); "
            "is this the SeCo 100k/1M corpus? For uint16 DN use `seco import ssl4eo-s12`"
        )
    return _LUT[values]


def baseline_offset(metadata: Mapping[str, Any] | None) -> int:
    """The DN offset to subtract for an item, from its Earth Engine ``PROCESSING_BASELINE`` property.

    Returns:
        1000 for baseline 04.00 or later, 0 before or when the property is absent (all SSL4EO-S12 v1 and
        SeCo dates predate 04.00; an absent property is taken as the corpus' collection period says).

    Raises:
        CorpusError: a ``PROCESSING_BASELINE`` that is not a version number like ``"02.09"``.
    """
    if not metadata or metadata.get("PROCESSING_BASELINE") in (None, ""):
        return 0
    raw = metadata["PROCESSING_BASELINE"]
    try:
        version = float(str(raw).strip())
    except ValueError:
        raise CorpusError(
            f"PROCESSING_BASELINE {raw!r} in metadata.json is not a version like '02.09'; fix or remove it"
        ) from None
    return BASELINE_OFFSET if version >= 4.0 else 0


def to_dn(values: np.ndarray, scale: CorpusScale, offset: int = 0) -> np.ndarray:
    """Corpus values -> seco uint16 DN (reflectance x 10000) by the corpus' rule.

    Args:
        values: one band or a stack, the corpus dtype.
        scale: ``SECO_UINT8`` or ``SSL4EO_DN``.
        offset: DN to subtract (``baseline_offset``); valid pixels stay >= 1, nodata 0 stays 0.

    Raises:
        CorpusError: a dtype that is not the corpus'.
    """
    if scale.name == SECO_UINT8.name:
        dn = seco_uint8_to_dn(values)
    elif values.dtype == np.uint16:
        dn = values
    elif values.dtype.kind in "iu" and values.size and (values.min() < 0 or values.max() > 65535):
        raise CorpusError(f"{scale.name} band values {values.min()}..{values.max()} do not fit uint16 DN")
    elif values.dtype.kind in "iu":
        dn = values.astype(np.uint16)
    else:
        raise CorpusError(
            f"{scale.name} band has dtype {values.dtype}, expected uint16 DN (reflectance x 10000); "
            "is this SSL4EO-S12 Sentinel-2 (s2c/s2a)?"
        )
    if offset:
        nodata = dn == 0
        dn = np.maximum(dn.astype(np.int32) - offset, 1).astype(np.uint16)
        dn[nodata] = 0
    return dn


# ---------------------------------------------------------------------------------------------- Sentinel-1

#: ``rule`` recorded per date for SSL4EO-S12 v1 S1 (the store's ``s1/meta/rule``): Earth Engine's GRD sigma0
#: in dB, taken as it is; 0.0 (the downloader's ``defaultValue``) and non-finite values are no data.
S1_SSL4EO_RULE = "corpus:ssl4eo-s12-v1:ee-s1-grd-sigma0-db"
#: The same for SSL4EO-S12 v1.1 (float16 dB of the same Earth Engine product).
S1_SSL4EO_V11_RULE = "corpus:ssl4eo-s12-v1.1:ee-s1-grd-sigma0-db-float16"

SSL4EO_S1_DB = CorpusScale(
    name="ssl4eo-s1-db",
    source_dtype="float32",
    source_scale=1.0,
    quantisation="none",
    lossy=False,
    conversion="dB = v (Earth Engine COPERNICUS/S1_GRD sigma0, already 10*log10); v == 0.0 or non-finite -> no data",
    max_abs_error_dn=0.0,
    zero_is_nodata=True,
    note=("Sentinel-1 GRD sigma0 in dB exactly as Earth Engine served it (IW, VV+VH; noise removed, calibrated, "
          "terrain-corrected by Earth Engine); stored in dB at 0.01 dB steps (|error| <= 0.005 dB)."),
)

SSL4EO_V11_S1_DB = CorpusScale(
    name="ssl4eo-v11-s1-db",
    source_dtype="float16",
    source_scale=1.0,
    quantisation="float16",
    lossy=True,
    conversion="dB = float(v); v == 0.0 or non-finite -> no data",
    max_abs_error_dn=0.0,
    zero_is_nodata=True,
    note=("Sentinel-1 GRD sigma0 in dB rounded to float16 by the corpus (~0.008 dB steps between -16 and -32 dB, "
          "~0.016 dB between -32 and -64), then stored at 0.01 dB steps."),
)


def s1_db(values: np.ndarray) -> np.ndarray:
    """Corpus S1 backscatter (float dB, any shape) -> float32 dB with NaN for no data (0.0 or non-finite).

    Raises:
        CorpusError: an integer dtype (S1 in the corpora is float dB; integers mean something else).
    """
    if values.dtype.kind != "f":
        raise CorpusError(
            f"Sentinel-1 band has dtype {values.dtype}, expected float32/float16 backscatter in dB; "
            "is this the SSL4EO-S12 s1/ folder (VV.tif, VH.tif)?"
        )
    db = values.astype(np.float32, copy=True)
    db[(db == 0.0) | ~np.isfinite(db)] = np.nan
    return db


# ---------------------------------------------------------------------------------------------- v1.1

#: DN added to the Sentinel-2 values of the SSL4EO-S12 v1.1 **Zarr-zip** release (not of its webdataset
#: release, nor of v1). Evidence in docs/IMPORT.md ("SSL4EO-S12 v1.1: the 1000 DN question").
V11_OFFSET = 1000

SSL4EO_V11_ZARR = CorpusScale(
    name="ssl4eo-v11-zarr",
    source_dtype="int16",
    source_scale=10000.0,
    quantisation="none",
    lossy=False,
    conversion=("DN = v - 1000 when the file carries the +1000 offset (decided per file from its darkest valid "
                "values, or forced by --v11-offset), else DN = v; v <= offset -> 0 (no data)"),
    max_abs_error_dn=0.0,
    zero_is_nodata=True,
    note=("int16 DN of SSL4EO-S12 v1.1 Zarr-zip files: v1's Earth Engine values with +1000 added to align with "
          "processing baseline 04.00 (the release's own zarr_dataset.py says so); seco removes it."),
)


def v11_offset(values: np.ndarray) -> tuple[int, int | None]:
    """Decide whether a v1.1 Zarr-zip S2 array carries the +1000 DN offset, from its dark-object level.

    With the offset every valid pixel is ``>= 1001`` (v1's DN are ``>= 1``; 0 is no data); without it a file of
    64 locations x 4 seasons holds many valid values below 1000 (L1C B10 averages ~22 DN, L2A B01 ~750 DN).

    Args:
        values: (..., C, H, W) int16 DN of one file (or one sample).

    Returns:
        (offset, darkest): 1000 when no valid value (> 0) is below 1001, else 0; and the darkest valid value
        (``None`` when there is none, then the offset is 1000, the release's documented state).
    """
    pos = values[values > 0]
    if pos.size == 0:
        return V11_OFFSET, None
    darkest = int(pos.min())
    return (V11_OFFSET if darkest > V11_OFFSET else 0), darkest


def v11_to_dn(values: np.ndarray, offset: int) -> np.ndarray:
    """v1.1 int16 S2 values -> seco uint16 DN: ``v - offset``; values ``<= offset`` (nodata, negatives) -> 0.

    Raises:
        CorpusError: a dtype other than a signed/unsigned integer.
    """
    if values.dtype.kind not in "iu":
        raise CorpusError(f"SSL4EO-S12 v1.1 S2 band has dtype {values.dtype}, expected int16 DN; is this an S2L1C/"
                          "S2L2A file (S1GRD is float16 dB)?")
    v = values.astype(np.int32)
    out = np.where(v > offset, v - offset, 0)
    return np.minimum(out, 65535).astype(np.uint16)
