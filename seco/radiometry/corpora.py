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
