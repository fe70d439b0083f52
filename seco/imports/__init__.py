"""Import published pre-training corpora (SeCo 100k/1M, SSL4EO-S12 v1) into a seco store.

- :mod:`seco.imports.layouts`: the corpora's folder layouts, finding locations, refusing wrong roots;
- :mod:`seco.imports.readers`: one location -> (T, C, P, P) uint16 DN on the 10 m grid + per-date metadata;
- :mod:`seco.imports.pipeline`: parallel (processes or Dask), resumable, exactly-once import with a report;
- :mod:`seco.imports.commands`: ``seco import {seco,ssl4eo-s12}``.

Value scales and their conversion live in :mod:`seco.radiometry.corpora`. No torch here.
"""

from seco.imports.layouts import CORPORA, Corpus, LocationRef, corpus_for, find_locations
from seco.imports.pipeline import ImportConfig, ImportReport, run_import
from seco.imports.readers import ReadJob, ReadResult, read_location

__all__ = [
    "CORPORA", "Corpus", "ImportConfig", "ImportReport", "LocationRef", "ReadJob", "ReadResult", "corpus_for",
    "find_locations", "read_location", "run_import",
]
