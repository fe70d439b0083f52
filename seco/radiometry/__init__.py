"""How every source's pixel values become reflectance x 10000 (seco's DN), in one place.

- :mod:`seco.radiometry.providers`: Sentinel-2 STAC providers (processing-baseline offsets, provider
  harmonisation flags, ``raster:bands`` scale/offset), decided per item and band, with the rule that decided.
- :mod:`seco.radiometry.corpora`: value scales of imported published corpora (SeCo 8-bit, SSL4EO-S12 DN).

numpy only: usable by ``seco.collect`` (which never imports torch) and by the store tools.
"""
