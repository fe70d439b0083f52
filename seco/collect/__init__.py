"""Building the unlabeled multi-temporal Sentinel-2 dataset: where (sampling), when (dates), from what (catalog).

Never imports torch.
"""

from seco.collect.build import BuildReport, build_catalog, write_stac_geoparquet
from seco.collect.catalog import PRESETS, Catalog, ParquetCatalog, SasSigner, StacApiCatalog, open_catalog
from seco.collect.dates import DateSchedule, DateWindows, date_windows
from seco.collect.geo import LandMask, load_land_mask
from seco.collect.sampling import (
    Cities,
    Locations,
    SampleConfig,
    load_cities,
    plot_locations,
    read_locations,
    run_sample,
    sample,
    sample_cities,
    sample_uniform_land,
    write_locations,
)
from seco.collect.scene import SceneItem, choose_scene

__all__ = [
    "PRESETS", "BuildReport", "Catalog", "Cities", "DateSchedule", "DateWindows", "LandMask", "Locations",
    "ParquetCatalog", "SampleConfig", "SasSigner", "SceneItem", "StacApiCatalog", "build_catalog", "choose_scene",
    "date_windows", "load_cities", "load_land_mask", "open_catalog", "plot_locations", "read_locations",
    "run_sample", "sample", "sample_cities", "sample_uniform_land", "write_locations", "write_stac_geoparquet",
]
