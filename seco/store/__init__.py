"""The one on-disk dataset format: a versioned Zarr v3 store written by collect/synth, read by pre-training.

Layout, atomicity protocol and the measured chunking choice: docs/STORE.md.
"""

from seco.store.create import create_store, open_writer
from seco.store.reader import Store, open_store
from seco.store.s1 import S1Patch, S1Reader
from seco.store.schema import (
    DATE_FIELDS,
    FIELD_NAMES,
    NODATA,
    SCHEMA_VERSION,
    StoreConfig,
    StoreIndexError,
    StoreLayout,
)
from seco.store.writer import StoreWriter

__all__ = [
    "DATE_FIELDS",
    "FIELD_NAMES",
    "NODATA",
    "SCHEMA_VERSION",
    "S1Patch",
    "S1Reader",
    "Store",
    "StoreConfig",
    "StoreIndexError",
    "StoreLayout",
    "StoreWriter",
    "create_store",
    "open_store",
    "open_writer",
]
