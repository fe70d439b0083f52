"""Per-class Sentinel-2 spectra of the simulated archive, in DN (reflectance x 10000), L1C band order.

The numbers marked *derived* come from the real samples in ../shared/data and are recomputed by
``python -m seco.synth.calibrate`` (see its docstring for the method): EuroSAT MS class means, typical
within-patch texture and between-patch spread, the seasonal NDVI amplitude per class, and the greenness
slope d ln(reflectance) / d NDVI per band from the 5-date Slovenian location. EuroSAT is Level-1C (top of
atmosphere), so the visible bands are a little brighter than L2A surface reflectance would be; synth keeps
them as measured. Values marked *assumed* have no counterpart in the samples and come from typical
published spectra (bare rock, snow, cloud tops) and crop calendars.
"""

from __future__ import annotations

import numpy as np

from seco.bands import L1C, indices

#: Land-cover classes; a patch's label is the index of its dominant class.
CLASSES: tuple[str, ...] = ("forest", "cropland", "grassland", "urban", "water", "mountain")

# --- derived (python -m seco.synth.calibrate; bands B01 B02 B03 B04 B05 B06 B07 B08 B8A B09 B10 B11 B12)
CLASS_MEAN: dict[str, tuple[int, ...]] = {
    "forest": (1128, 828, 711, 428, 775, 2204, 2819, 2764, 3145, 857, 10, 1355, 559),
    "cropland": (1447, 1283, 1317, 1421, 1709, 2626, 3100, 3000, 3404, 873, 14, 2767, 1827),
    "grassland": (1323, 1076, 1022, 875, 1291, 2419, 2867, 2838, 3196, 1065, 15, 2212, 1234),
    "urban": (1552, 1330, 1236, 1217, 1381, 1953, 2222, 2107, 2385, 590, 12, 2013, 1455),
    "water": (1196, 922, 782, 488, 516, 382, 379, 315, 291, 91, 8, 86, 52),
}
CLASS_WITHIN: dict[str, tuple[int, ...]] = {
    "forest": (8, 20, 43, 33, 69, 232, 321, 409, 361, 62, 1, 156, 82),
    "cropland": (78, 174, 236, 399, 313, 310, 368, 413, 388, 64, 1, 450, 426),
    "grassland": (32, 78, 102, 162, 153, 269, 335, 400, 357, 86, 1, 286, 208),
    "urban": (76, 267, 306, 410, 234, 306, 395, 532, 450, 59, 1, 333, 328),
    "water": (6, 12, 16, 15, 11, 11, 12, 11, 12, 3, 1, 5, 7),
}
CLASS_BETWEEN: dict[str, tuple[int, ...]] = {
    "forest": (137, 105, 94, 82, 184, 518, 688, 682, 751, 365, 2, 306, 147),
    "cropland": (221, 270, 318, 503, 461, 377, 480, 473, 530, 304, 3, 657, 561),
    "grassland": (231, 197, 184, 271, 249, 371, 478, 480, 540, 318, 4, 514, 371),
    "urban": (153, 185, 224, 317, 290, 284, 330, 323, 368, 182, 4, 407, 358),
    "water": (136, 180, 293, 243, 311, 195, 213, 182, 177, 41, 2, 82, 49),
}
#: Seasonal NDVI half-amplitude: sqrt(2) x between-patch NDVI std. Water is set to 0 (the 0.25 measured
#: on SeaLake patches is turbidity and shorelines, not phenology): water stays stable.
NDVI_AMPLITUDE = {"forest": 0.126, "cropland": 0.215, "grassland": 0.166, "urban": 0.148, "water": 0.0}
#: d ln(reflectance) / d NDVI per band: how a band moves when vegetation greens up (red down, NIR up).
GREENNESS_SLOPE = (-0.318, -0.99, -1.414, -3.015, -1.746, 0.282, 0.619, 0.841, 0.55, 0.16, 0.0, -1.252, -2.23)

# --- assumed
#: Bare rock / scree (bright, slowly rising to the SWIR; water-vapour dip at B09) for the mountain class.
ROCK = (1400, 1300, 1400, 1550, 1700, 1800, 1900, 1950, 2050, 700, 12, 2500, 2000)
#: Snow: very bright in the visible, dark in the SWIR (B11, B12), which is what tells it from cloud.
SNOW = (8800, 8600, 8400, 8200, 8000, 7800, 7600, 7300, 7000, 2600, 30, 900, 700)
#: Cloud top: bright in every band, SWIR a little lower, visible in the cirrus band B10.
CLOUD = (6500, 6300, 6200, 6100, 6100, 6100, 6000, 5900, 5800, 2200, 900, 4200, 3000)
CLASS_MEAN["mountain"] = ROCK
CLASS_WITHIN["mountain"] = tuple(int(0.08 * v) for v in ROCK)
CLASS_BETWEEN["mountain"] = tuple(int(0.15 * v) for v in ROCK)
NDVI_AMPLITUDE["mountain"] = 0.08  # sparse alpine vegetation between the rocks
#: Day of year of the greenest date, northern hemisphere (crop calendars; shifted by 182 d in the south).
PEAK_DOY = {"forest": 190, "cropland": 175, "grassland": 160, "urban": 190, "water": 190, "mountain": 205}
#: Cropland parcel calendars: (peak day of year, NDVI amplitude factor) for winter cereal, maize, other.
CROP_CALENDARS = ((140, 1.2), (215, 1.3), (175, 0.8), (175, 0.25))


def table(bands: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The spectra of ``bands`` as arrays: mean, within, between (K, C) float32; slope (C,); amp, peak (K,)."""
    idx = indices(bands, L1C)

    def pick(d: dict[str, tuple[int, ...]]) -> np.ndarray:
        return np.asarray([[d[k][i] for i in idx] for k in CLASSES], dtype=np.float32)

    return {
        "mean": pick(CLASS_MEAN),
        "within": pick(CLASS_WITHIN),
        "between": pick(CLASS_BETWEEN),
        "slope": np.asarray([GREENNESS_SLOPE[i] for i in idx], dtype=np.float32),
        "amp": np.asarray([NDVI_AMPLITUDE[k] for k in CLASSES], dtype=np.float32),
        "peak": np.asarray([PEAK_DOY[k] for k in CLASSES], dtype=np.float32),
        "snow": np.asarray([SNOW[i] for i in idx], dtype=np.float32),
        "cloud": np.asarray([CLOUD[i] for i in idx], dtype=np.float32),
    }
