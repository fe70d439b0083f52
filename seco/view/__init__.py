"""``seco store view``: a self-contained static HTML browser of a store (map, time strips, store-wide views).

    from seco.view import ViewConfig, build_view
    result = build_view("data/store.zarr", "view/", ViewConfig(max_locations=200, false_colour="B12,B08,B04"))
    print(result.describe())          # open view/index.html from the file system

Modules: :mod:`~seco.view.build` (the run: selection, parallel pages, index), :mod:`~seco.view.select` (which
locations), :mod:`~seco.view.location` (one page and its quicklooks), :mod:`~seco.view.quicklook` (stretch and
images), :mod:`~seco.view.summary` (store-wide views), ``static/`` (HTML, CSS, JS, basemap). docs/VIEW.md.
"""

from seco.view.build import ViewConfig, ViewResult, build_view

__all__ = ["ViewConfig", "ViewResult", "build_view"]
